/**
 * `sdbot start`: everything on one machine. Redis (REDIS_URL, or a local `redis-server` child keeping its data in
 * the state folder), an engine worker (a child process running `sdbot engine`), and every chat adapter whose
 * credentials are set (Discord, Slack); with none set, the local web chat on http://127.0.0.1:8080.
 * `sdbot bot`: the adapters alone, against a deployment's queue.
 *
 * With no --model and no models file, the engine serves the tiny smoke-test model shipped in the repository, so the
 * whole flow runs offline; its pictures are noise, and the web chat says so in a banner.
 *
 * SIGTERM / SIGINT stop everything in the reverse order it started: adapters, bot core, queue client, engine
 * (which finishes or hands back its running job), Redis (which flushes its append-only file).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { InvalidArgumentError, type Command } from 'commander';
import { RedisQueueClient } from '../queue/redis-client.js';
import { serveBotObservability } from '../bot/core/observability.js';
import { createBotCore } from '../bot/core/create-core.js';
import { discordOptionsFromEnv, startDiscordBot } from '../bot/discord/start.js';
import { startWebChat, webOptionsFromEnv } from '../bot/web/start.js';
import { createLogger, type Logger } from '../queue/logger.js';
import { ensureRedisServer, MissingRedisError, startLocalRedis } from './local-redis.js';

import { DEMO_MODEL, DEMO_NOTICE, PROJECT_ROOT as ROOT } from './demo-model.js';

export { DEMO_MODEL, DEMO_NOTICE };
/** The project's state folder (git-ignored): the local Redis's data lives here. */
export const DEFAULT_STATE_DIR = join(ROOT, '.state');

interface StartOptions {
  model: string[];
  modelsFile?: string;
  /** Unset: run a local redis-server. */
  redis?: string;
  redisPort?: number;
  stateDir: string;
  web: 'auto' | 'on' | 'off';
}

const collect = (v: string, prev: string[]) => [...prev, v];

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number');
  return n;
}

function webMode(v: string): StartOptions['web'] {
  if (v !== 'auto' && v !== 'on' && v !== 'off') throw new InvalidArgumentError('expected auto, on or off');
  return v;
}

/** Things that started, stopped in reverse order on shutdown. */
class Lifecycle {
  private readonly stops: { name: string; stop: () => Promise<void> }[] = [];
  private stopping: Promise<void> | null = null;

  constructor(private readonly log: Logger) {}

  add(name: string, stop: () => Promise<void>): void {
    this.stops.push({ name, stop });
  }

  get isStopping(): boolean {
    return this.stopping !== null;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const s of [...this.stops].reverse()) {
        try {
          await s.stop();
          this.log.info(`stopped ${s.name}`);
        } catch (err) {
          this.log.warn({ err: String(err) }, `stopping ${s.name} failed`);
        }
      }
    })();
    return this.stopping;
  }
}

/** Runs `sdbot engine` as a child so the denoising loop never blocks the bot's event loop. */
function spawnEngine(o: StartOptions, redisUrl: string): ChildProcess {
  const tsx = createRequire(import.meta.url).resolve('tsx/cli');
  const models = o.model.length === 0 && !o.modelsFile ? [DEMO_MODEL] : o.model;
  // One machine: its metrics stay on this machine too.
  const args = [tsx, join(ROOT, 'src', 'cli.ts'), 'engine', '--redis', redisUrl, '--metrics-host', '127.0.0.1', ...models.flatMap((m) => ['--model', m])];
  if (o.modelsFile) args.push('--models-file', o.modelsFile);
  // The engine's stdin is a pipe from us: if this process dies without a chance to stop it (SIGKILL), the pipe
  // closes and the engine shuts down instead of running on as an orphan.
  return spawn(process.execPath, [...args, '--exit-with-parent'], { stdio: ['pipe', 'inherit', 'inherit'] });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  return exited;
}

/** Starts the chat adapters on one shared bot core; returns the web chat's URL when it runs. */
async function startAdapters(o: StartOptions, queue: RedisQueueClient, redisUrl: string, life: Lifecycle, log: Logger, demo: boolean): Promise<string | null> {
  const discord = discordOptionsFromEnv();
  // Loaded only when configured: a Slack-less start never loads @slack/bolt.
  const slackModule = process.env.SLACK_BOT_TOKEN?.trim() ? await import('../bot/slack/start.js') : null;
  const slack = slackModule?.slackOptionsFromEnv() ?? null;
  const web = o.web === 'on' || (o.web === 'auto' && !discord && !slack);
  const handle = await createBotCore({
    queue, redisUrl, logger: log,
    ...(o.modelsFile ? { modelsFile: o.modelsFile } : {}),
    // The web chat alone has no platform edit limits: livelier progress.
    ...(!discord && !slack ? { progressIntervalMs: 500 } : {}),
  });
  life.add('bot core', () => handle.close());
  const core = handle.core;
  if (discord) {
    const bot = await startDiscordBot({
      token: discord.token, adminUserIds: discord.adminUserIds, core,
      ...(discord.applicationId ? { applicationId: discord.applicationId } : {}),
      ...(discord.apiUrl ? { apiUrl: discord.apiUrl } : {}),
    });
    life.add('Discord bot', () => bot.stop());
    log.info({ user: bot.client.user.tag }, 'Discord bot connected');
  }
  if (slack && slackModule) {
    const bot = await slackModule.startSlackBot({ ...slack, core });
    life.add('Slack bot', () => bot.stop());
    log.info({ mode: bot.mode, port: bot.port }, 'Slack bot connected');
  }
  if (!web) return null;
  const env = webOptionsFromEnv();
  const chat = await startWebChat({
    core, host: env.host, port: env.port,
    ...(env.adminUserIds ? { adminUserIds: env.adminUserIds } : {}),
    ...(demo ? { notice: DEMO_NOTICE } : {}),
  });
  life.add('web chat', () => chat.stop());
  if (!discord && !slack) log.info('No chat credentials set (DISCORD_TOKEN, SLACK_BOT_TOKEN): starting the local web chat.');
  log.info({ url: chat.url }, `Web chat: open ${chat.url} in your browser`);
  return chat.url;
}

async function run(o: StartOptions, withEngine: boolean): Promise<void> {
  const log = createLogger('sdbot');
  const life = new Lifecycle(log);
  let exitCode = 0;
  const shutdown = async (code: number) => {
    exitCode = Math.max(exitCode, code);
    await life.stop();
    process.exit(exitCode);
  };
  process.on('SIGTERM', () => void shutdown(0));
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGHUP', () => void shutdown(0));
  try {
    let redisUrl = o.redis;
    if (!redisUrl) {
      ensureRedisServer((m) => log.warn(m));
      const dir = join(o.stateDir, 'redis');
      const redis = await startLocalRedis({ dir, ...(o.redisPort !== undefined ? { port: o.redisPort } : {}) });
      life.add('Redis', () => redis.stop());
      redis.onUnexpectedExit((code) => {
        log.error({ code, output: redis.output() }, 'redis-server exited');
        void shutdown(1);
      });
      redisUrl = redis.url;
      log.info({ url: redis.url, dir, pid: redis.pid }, redis.adopted
        ? 'took over the local Redis an earlier sdbot start left running on this state folder'
        : 'local Redis ready (append-only file on)');
    }
    const demo = withEngine && o.model.length === 0 && !o.modelsFile;
    if (withEngine) {
      const engine = spawnEngine(o, redisUrl);
      life.add('engine worker', () => stopChild(engine));
      engine.once('exit', (code, signal) => {
        if (!life.isStopping) {
          log.error({ code, signal }, 'engine worker exited');
          void shutdown(1);
        }
      });
      log.info({ pid: engine.pid, models: demo ? ['tiny-sd15 (smoke-test model: its pictures are noise)'] : o.model }, 'engine worker started');
    }
    const queue = await RedisQueueClient.connect({ redisUrl });
    life.add('queue client', () => queue.close());
    // The bot's own /metrics and /healthz (the engine worker serves its own on METRICS_PORT, 9464).
    try {
      const obs = await serveBotObservability(queue, Number(process.env.BOT_METRICS_PORT ?? 9465));
      life.add('bot metrics', () => obs.close());
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'bot /metrics not served (set BOT_METRICS_PORT to a free port)');
    }
    const url = await startAdapters(o, queue, redisUrl, life, log, demo);
    log.info({ redis: redisUrl, webChat: url }, 'sdbot is running; Ctrl-C or SIGTERM stops everything');
    if (demo) log.warn(DEMO_NOTICE);
  } catch (err) {
    if (err instanceof MissingRedisError) process.stderr.write(`\n${err.message}\n\n`);
    else log.error({ err: err instanceof Error ? err.stack : String(err) }, 'sdbot failed to start');
    await shutdown(1);
  }
}

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('run Redis (unless REDIS_URL is set), an engine worker, and every chat adapter whose credentials are set (else the local web chat)')
    .option('--model <dir>', 'model folder to serve (repeatable; default: the bundled smoke-test model, whose pictures are noise)', collect, [])
    .option('--models-file <file>', 'JSON models file')
    .option('--redis <url>', 'use this Redis instead of starting one (default: REDIS_URL)', process.env.REDIS_URL)
    .option('--redis-port <port>', 'port for the local Redis (default 6379 when free, else any free port)', port)
    .option('--state-dir <dir>', 'state folder: the local Redis keeps its data here (default: SDBOT_STATE_DIR or .state/)', process.env.SDBOT_STATE_DIR ?? DEFAULT_STATE_DIR)
    .option('--web <mode>', 'local web chat: auto (when no chat credentials are set), on, off', webMode, (process.env.WEB_CHAT ?? 'auto') as StartOptions['web'])
    .action(async (o: StartOptions) => {
      if (o.model.length === 0 && !o.modelsFile && !existsSync(DEMO_MODEL)) throw new Error(`demo model missing at ${DEMO_MODEL}`);
      await run({ ...o, stateDir: resolve(o.stateDir) }, true);
    });
  program
    .command('bot')
    .description('run the chat adapters only, against the queue at --redis')
    .option('--models-file <file>', 'JSON models file (families, defaults, tokenizers)')
    .option('--redis <url>', 'Redis URL', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
    .option('--web <mode>', 'local web chat: auto (when no chat credentials are set), on, off', webMode, (process.env.WEB_CHAT ?? 'auto') as StartOptions['web'])
    .action(async (o: Omit<StartOptions, 'model' | 'stateDir'>) => run({ ...o, model: [], stateDir: DEFAULT_STATE_DIR }, false));
}
