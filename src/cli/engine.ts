/**
 * `sdbot engine --model DIR [--model DIR …] [--models-file F] [--redis URL]`: an engine worker. It serves the
 * models it holds from the deployment's Redis queue, heartbeats its state, obeys admin commands, exposes /metrics
 * and /healthz, and on SIGTERM finishes (or hands back) its running job before exiting.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { loadModelsFile, resolveModels } from '../engine/models-file.js';
import type { Engine } from '../engine/engine.js';
import { ChildProcessEngine, DEFAULT_ENGINE_MODULE } from '../queue/child-engine.js';
import { serveObservability } from '../queue/http.js';
import { createLogger } from '../queue/logger.js';
import { WorkerMetrics } from '../queue/metrics.js';
import { EngineWorker } from '../queue/worker.js';

function int(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
}

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number of seconds');
  return n;
}

const collect = (v: string, prev: string[]) => [...prev, v];

interface EngineCliOptions {
  model: string[];
  modelsFile?: string;
  redis: string;
  prefix: string;
  concurrency: number;
  metricsPort: number;
  metricsHost: string;
  metrics: boolean;
  providers: string;
  lockMs: number;
  stalledMs: number;
  heartbeatMs: number;
  jobTimeoutS: number;
  shutdownGraceS: number;
  resultTtlS: number;
  engineModule: string;
  inProcess?: boolean;
  exitWithParent?: boolean;
}

export function registerEngine(program: Command): void {
  program
    .command('engine')
    .description('Run an engine worker: take jobs for the models it holds from the Redis queue')
    .option('--model <dir>', 'model folder to load (repeatable); its id is the folder name', collect, [])
    .option('--models-file <file>', 'JSON models file: ids, folders, per-model defaults, the default model')
    .option('--redis <url>', 'Redis URL', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
    .option('--prefix <prefix>', 'key prefix shared with the bots', 'sdbot')
    .option('--concurrency <n>', 'jobs at once on this engine (one per GPU is best)', int, 1)
    .option('--metrics-port <port>', 'port for /metrics and /healthz (0: any free port)', int, Number(process.env.METRICS_PORT ?? 9464))
    .option('--metrics-host <host>', 'address for /metrics and /healthz', '0.0.0.0')
    .option('--no-metrics', 'do not serve /metrics and /healthz')
    .option('--providers <list>', 'ONNX execution providers in order, e.g. cuda,cpu', 'cpu')
    .option('--lock-ms <ms>', 'job lock duration: a silent worker loses its job after this', int, 30_000)
    .option('--stalled-ms <ms>', 'how often to look for jobs of dead workers', int, 30_000)
    .option('--heartbeat-ms <ms>', 'worker heartbeat interval', int, 2000)
    .option('--job-timeout-s <s>', 'stop a job that runs longer than this', seconds, 600)
    .option('--shutdown-grace-s <s>', 'on SIGTERM, wait this long for the running job before handing it back', seconds, 60)
    .option('--result-ttl-s <s>', 'how long result images stay in Redis', int, 3600)
    .option('--engine-module <path>', 'module exporting createEngine (for tests)', DEFAULT_ENGINE_MODULE)
    .option('--exit-with-parent', 'shut down when stdin closes (the parent that started this worker is gone)')
    .option('--in-process', 'run the engine on the main thread (not recommended: long steps can cost the job lock)')
    .action(async (o: EngineCliOptions) => {
      const log = createLogger('sdbot-engine');
      const config = resolveModels(o.model, o.modelsFile ? loadModelsFile(o.modelsFile) : null);
      if (config.models.length === 0) throw new InvalidArgumentError('give at least one --model DIR or a --models-file');
      const providers = o.providers.split(',').map((p) => p.trim()) as ('cuda' | 'tensorrt' | 'cpu')[];
      let engine: Engine;
      const engineModule = resolve(o.engineModule);
      if (o.inProcess) {
        const mod = (await import(pathToFileURL(engineModule).href)) as { createEngine(opts: object): Promise<Engine> };
        engine = await mod.createEngine({ providers });
      } else {
        const child = new ChildProcessEngine({ engineModule, redisUrl: o.redis, providers });
        await child.start();
        engine = child;
      }
      const metrics = new WorkerMetrics(true);
      let exiting = false;
      const worker = new EngineWorker({
        redisUrl: o.redis,
        prefix: o.prefix,
        engine,
        models: config.models,
        defaultModel: config.defaultModel,
        concurrency: o.concurrency,
        lockDurationMs: o.lockMs,
        stalledIntervalMs: o.stalledMs,
        heartbeatMs: o.heartbeatMs,
        jobTimeoutMs: Math.round(o.jobTimeoutS * 1000),
        shutdownGraceMs: Math.round(o.shutdownGraceS * 1000),
        resultTtlMs: o.resultTtlS * 1000,
        logger: log,
        metrics,
        onDrained: () => void exit(0),
      });
      const http = o.metrics
        ? await serveObservability({ port: o.metricsPort, host: o.metricsHost, registries: [metrics.registry], health: () => worker.health() })
        : null;
      if (http) log.info({ port: http.port }, 'serving /metrics and /healthz');
      const exit = async (code: number) => {
        if (exiting) return;
        exiting = true;
        await worker.shutdown();
        await http?.close();
        process.exit(code);
      };
      process.on('SIGTERM', () => void exit(0));
      if (o.exitWithParent) {
        process.stdin.on('close', () => void exit(0));
        process.stdin.on('end', () => void exit(0));
        process.stdin.resume();
      }
      process.on('SIGINT', () => void exit(0));
      await worker.start();
    });
}
