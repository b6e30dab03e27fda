/**
 * `npm run bench:queue`: the queue's own costs on this machine, against a fresh redis-server.
 *  1. enqueue → start latency (p50 / p99), one job at a time, idle worker;
 *  2. no-op jobs per second (enqueue of N jobs from 50 concurrent producers to the last completed update);
 *  3. end-to-end time of a tiny-sd15 job through the queue vs the same job in-process.
 * Configuration, as deployed: the bot side (RedisQueueClient) in this process, each engine worker its own
 * `sdbot engine` process with production lock / stalled / heartbeat settings. For 1 and 2 the engine is a no-op
 * (bench/noop-engine.ts: a fixed 1×1 PNG at once) run in the worker process (`--in-process`): the figures are the
 * queue's, not an engine's.
 * Throughput runs repeat (BENCH_REPEAT, default 3): best and spread are printed, since other work on the machine
 * moves them. Targets: p99 ≤ 20 ms, ≥ 1000 no-op jobs/s.
 */
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { startRedis, type TestRedis } from '../test/helpers/redis-server.js';
import { ROOT, spawnWorker, waitForWorker, type WorkerProc } from '../test/helpers/engine-procs.js';
import { generationRequestSchema, type GenerationRequest } from '../src/queue/job.js';
import type { JobUpdate } from '../src/queue/client.js';
import { RedisQueueClient } from '../src/queue/redis-client.js';
import { EngineWorker } from '../src/queue/worker.js';
import { ChildProcessEngine, DEFAULT_ENGINE_MODULE } from '../src/queue/child-engine.js';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { QueueKeys } from '../src/queue/keys.js';
import { decodeUpdate } from '../src/queue/events.js';

const LATENCY_JOBS = Number(process.env.BENCH_LATENCY_JOBS ?? 300);
const THROUGHPUT_JOBS = Number(process.env.BENCH_THROUGHPUT_JOBS ?? 3000);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const PRODUCERS = 50;
const TINY = join(ROOT, 'test/fixtures/models/tiny-sd15');
const NOOP_ENGINE = join(ROOT, 'bench/noop-engine.ts');

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const ms = (x: number) => `${x.toFixed(1)} ms`;
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');

let n = 0;
function request(model: string, prompt: string, user: string, extra: object = {}): GenerationRequest {
  return generationRequestSchema.parse({ model, prompt, seed: String(++n), steps: 1, origin: { platform: 'cli', userId: user }, ...extra });
}

function whenUpdate(c: RedisQueueClient, jobId: string, type: JobUpdate['type']): Promise<number> {
  return new Promise((resolve) => {
    const off = c.subscribe(jobId, (u) => {
      if (u.type === type || u.type === 'failed' || u.type === 'cancelled' || u.type === 'completed') {
        off();
        resolve(performance.now());
      }
    });
  });
}

/** `sdbot engine --in-process` on the no-op engine (bench/noop-engine.ts), production timings, logs at warn. */
async function noopWorkers(r: TestRedis, prefix: string, count: number, concurrency: number, c: RedisQueueClient): Promise<WorkerProc[]> {
  const prev = process.env.LOG_LEVEL;
  process.env.LOG_LEVEL = 'warn';
  const ws = Array.from({ length: count }, () =>
    spawnWorker({
      redisUrl: r.url, prefix, models: ['/noop'], engineModule: NOOP_ENGINE,
      args: ['--in-process', '--concurrency', String(concurrency), '--no-metrics', '--lock-ms', '30000', '--stalled-ms', '30000', '--heartbeat-ms', '2000'],
    }));
  if (prev === undefined) delete process.env.LOG_LEVEL;
  else process.env.LOG_LEVEL = prev;
  for (const w of ws) await waitForWorker(c, w, ['noop']);
  return ws;
}

async function stopWorkers(ws: WorkerProc[]): Promise<void> {
  await Promise.all(ws.map((w) => w.kill('SIGTERM')));
}

/**
 * Enqueue → start: from just before enqueue() to the worker's 'started' update, timed by its stream entry id (Redis
 * server clock, same machine, 1 ms resolution) so a job that starts before enqueue() returns is timed right too.
 */
async function latency(r: TestRedis): Promise<void> {
  const prefix = 'bench-lat';
  const c = await RedisQueueClient.connect({ redisUrl: r.url, prefix });
  const ws = await noopWorkers(r, prefix, 1, 1, c);
  const enqueuedAt = new Map<string, number>();
  for (let i = 0; i < LATENCY_JOBS + 20; i++) {
    const t0 = Date.now();
    const { jobId } = await c.enqueue(request('noop', 'noop', 'lat'));
    await whenUpdate(c, jobId, 'completed');
    if (i >= 20) enqueuedAt.set(jobId, t0); // the first jobs warm up connections and JIT
  }
  const redis = new Redis(r.url);
  const lat: number[] = [];
  for (const [id, fields] of await redis.xrange(new QueueKeys(prefix).events, '-', '+')) {
    const u = decodeUpdate(fields[fields.indexOf('u') + 1]!);
    const t0 = enqueuedAt.get(u.jobId);
    if (u.type === 'started' && t0 !== undefined) lat.push(Number(id.split('-')[0]) - t0);
  }
  redis.disconnect();
  console.log(`enqueue → start latency (${lat.length} jobs, idle worker, concurrency 1): p50 ${ms(pct(lat, 50))}, p99 ${ms(pct(lat, 99))}, max ${ms(Math.max(...lat))}  [load ${load()}]`);
  await c.close();
  await stopWorkers(ws);
}

async function throughputOnce(c: RedisQueueClient): Promise<{ total: number; enqueue: number }> {
  const t0 = performance.now();
  const dones: Promise<number>[] = [];
  let next = 0;
  // Enqueue from concurrent producers, as many bot processes and users would.
  await Promise.all(Array.from({ length: PRODUCERS }, async () => {
    while (next < THROUGHPUT_JOBS) {
      const i = next++;
      const { jobId } = await c.enqueue(request('noop', 'noop', `tp${i % 100}`));
      dones.push(whenUpdate(c, jobId, 'completed'));
    }
  }));
  const tEnq = performance.now();
  const tEnd = Math.max(...(await Promise.all(dones)));
  return { total: THROUGHPUT_JOBS / ((tEnd - t0) / 1000), enqueue: THROUGHPUT_JOBS / ((tEnq - t0) / 1000) };
}

async function throughput(r: TestRedis, concurrency: number, workers: number): Promise<void> {
  const prefix = `bench-tp-${concurrency}-${workers}`;
  const c = await RedisQueueClient.connect({ redisUrl: r.url, prefix, userCap: THROUGHPUT_JOBS });
  const ws = await noopWorkers(r, prefix, workers, concurrency, c);
  const runs: { total: number; enqueue: number }[] = [];
  for (let i = 0; i < REPEAT; i++) runs.push(await throughputOnce(c));
  const totals = runs.map((x) => Math.round(x.total));
  const best = runs.reduce((a, b) => (b.total > a.total ? b : a));
  console.log(
    `no-op throughput, ${workers} worker process(es) × concurrency ${concurrency}, ${THROUGHPUT_JOBS} jobs from ${PRODUCERS} producers: ` +
      `best ${Math.round(best.total)} jobs/s end to end (enqueue alone ${Math.round(best.enqueue)}/s); runs ${totals.join(', ')}  [load ${load()}]`,
  );
  await c.close();
  await stopWorkers(ws);
}

/** Context for the figures above: plain BullMQ, empty processor, same Redis, same moment. */
async function bareBullmq(r: TestRedis, concurrency: number): Promise<void> {
  const connection = { host: '127.0.0.1', port: r.port, maxRetriesPerRequest: null };
  const q = new Queue(`bare${concurrency}`, { connection, prefix: 'bench-bare' });
  await q.addBulk(Array.from({ length: THROUGHPUT_JOBS }, (_, i) => ({ name: 'j', data: { i }, opts: { priority: 1 + (i % 10) } })));
  const t0 = performance.now();
  let done = 0;
  await new Promise<void>((resolve) => {
    const w = new Worker(`bare${concurrency}`, async () => null, { connection, prefix: 'bench-bare', concurrency });
    w.on('completed', () => {
      if (++done === THROUGHPUT_JOBS) void w.close().then(() => resolve());
    });
  });
  console.log(`baseline: bare BullMQ worker (same process), jobs pre-added, empty processor, concurrency ${concurrency}: ${Math.round(THROUGHPUT_JOBS / ((performance.now() - t0) / 1000))} jobs/s  [load ${load()}]`);
  await q.close();
}

async function worker(r: TestRedis, prefix: string, engineModule: string, model: { id: string; dir: string }, concurrency: number) {
  const engine = new ChildProcessEngine({ engineModule, redisUrl: r.url });
  await engine.start();
  const w = new EngineWorker({ redisUrl: r.url, prefix, engine, models: [{ ...model, load: true }], concurrency, progressIntervalMs: 200 });
  await w.start();
  return w;
}

async function tinyModel(r: TestRedis): Promise<void> {
  if (!existsSync(TINY)) {
    console.log('tiny-sd15 fixture missing: skipping the end-to-end comparison');
    return;
  }
  const { createEngine } = await import('../src/engine/create-engine.js');
  const local = await createEngine();
  await local.loadModel({ id: 'tiny-sd15', dir: TINY });
  const mk = () => request('tiny-sd15', 'a photo of a cat', 'tiny', { steps: 10, sampler: 'euler_a', width: 64, height: 64 });
  const runs = 10;
  await local.runJob(mk());
  const inProc: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await local.runJob(mk());
    inProc.push(performance.now() - t0);
  }
  await local.close();
  const prefix = 'bench-tiny';
  const w = await worker(r, prefix, DEFAULT_ENGINE_MODULE, { id: 'tiny-sd15', dir: TINY }, 1);
  const c = await RedisQueueClient.connect({ redisUrl: r.url, prefix });
  const viaQueue: number[] = [];
  for (let i = 0; i < runs + 1; i++) {
    const t0 = performance.now();
    const { jobId } = await c.enqueue(mk());
    const done = await new Promise<JobUpdate>((res) => c.subscribe(jobId, (u) => (u.type === 'completed' || u.type === 'failed') && res(u)));
    if (done.type !== 'completed') throw new Error(`tiny job failed: ${JSON.stringify(done)}`);
    await c.getImage(done.images[0]!.key);
    if (i > 0) viaQueue.push(performance.now() - t0);
  }
  console.log(
    `tiny-sd15 txt2img 64×64, 10 steps: in-process p50 ${ms(pct(inProc, 50))}; through the queue (enqueue → PNG in hand) p50 ${ms(pct(viaQueue, 50))}` +
      ` → queue overhead ≈ ${ms(pct(viaQueue, 50) - pct(inProc, 50))}`,
  );
  await c.close();
  await w.shutdown();
}

const r = await startRedis();
try {
  console.log(`redis ${r.url}; node ${process.version}; ${availableParallelism()} CPUs; load average ${load()}`);
  // BENCH_CONFIGS: "concurrency x worker processes" list; BENCH_BARE=0 / BENCH_LATENCY=0 / BENCH_TINY=0 skip parts.
  const configs = (process.env.BENCH_CONFIGS ?? '1x1,4x1,8x1,4x2').split(',').map((c) => c.split('x').map(Number) as [number, number]);
  if (process.env.BENCH_BARE !== '0') {
    await bareBullmq(r, 1);
    await bareBullmq(r, 4);
  }
  if (process.env.BENCH_LATENCY !== '0') await latency(r);
  for (const [concurrency, workers] of configs) await throughput(r, concurrency, workers);
  if (process.env.BENCH_TINY !== '0') await tinyModel(r);
} finally {
  await r.stop();
}
