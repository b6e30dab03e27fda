/**
 * `sdbot start`: everything on one machine — an engine worker (a child process running `sdbot engine`) and every
 * chat adapter whose credentials are set. `sdbot bot`: the adapters alone, against a deployment's queue.
 *
 * With no --model and no models file, the engine serves the tiny smoke-test model shipped in the repository, so the
 * whole flow runs offline; its pictures are noise.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import type { Command } from 'commander';
import { RedisQueueClient } from '../queue/redis-client.js';
import { createBotCore } from '../bot/core/create-core.js';
import { discordOptionsFromEnv, startDiscordBot } from '../bot/discord/start.js';
import { createLogger } from '../queue/logger.js';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
export const DEMO_MODEL = join(ROOT, 'test', 'fixtures', 'models', 'tiny-sd15');

interface StartOptions {
  model: string[];
  modelsFile?: string;
  redis: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];

/** Runs `sdbot engine` as a child so the denoising loop never blocks the bot's event loop. */
function spawnEngine(o: StartOptions): ChildProcess {
  const tsx = createRequire(import.meta.url).resolve('tsx/cli');
  const models = o.model.length === 0 && !o.modelsFile ? [DEMO_MODEL] : o.model;
  const args = [tsx, join(ROOT, 'src', 'cli.ts'), 'engine', '--redis', o.redis, ...models.flatMap((m) => ['--model', m])];
  if (o.modelsFile) args.push('--models-file', o.modelsFile);
  return spawn(process.execPath, args, { stdio: 'inherit' });
}

async function runBots(o: StartOptions, engine: ChildProcess | null): Promise<void> {
  const log = createLogger('sdbot');
  const discord = discordOptionsFromEnv();
  if (!discord) {
    log.warn('No chat credentials set (DISCORD_TOKEN). Set them to connect a bot; meanwhile submit jobs with `npx sdbot generate --queue REDIS_URL …`.');
  }
  const queue = await RedisQueueClient.connect({ redisUrl: o.redis });
  const core = discord ? await createBotCore({ queue, redisUrl: o.redis, ...(o.modelsFile ? { modelsFile: o.modelsFile } : {}) }) : null;
  const bot = discord && core
    ? await startDiscordBot({
        token: discord.token, adminUserIds: discord.adminUserIds, core: core.core,
        ...(discord.applicationId ? { applicationId: discord.applicationId } : {}),
        ...(discord.apiUrl ? { apiUrl: discord.apiUrl } : {}),
      })
    : null;
  if (bot) log.info({ user: bot.client.user.tag }, 'Discord bot connected');
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await bot?.stop();
    await core?.close();
    await queue.close();
    if (engine && engine.exitCode === null) {
      engine.kill('SIGTERM');
      await new Promise((r) => engine.once('exit', r));
    }
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  engine?.once('exit', (code) => {
    if (!stopping) {
      log.error({ code }, 'engine worker exited');
      void stop();
    }
  });
}

export function registerStart(program: Command): void {
  const redisDefault = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  program
    .command('start')
    .description('run an engine worker and every chat adapter whose credentials are set')
    .option('--model <dir>', 'model folder to serve (repeatable; default: the bundled smoke-test model)', collect, [])
    .option('--models-file <file>', 'JSON models file')
    .option('--redis <url>', 'Redis URL', redisDefault)
    .action(async (o: StartOptions) => {
      if (o.model.length === 0 && !o.modelsFile && !existsSync(DEMO_MODEL)) throw new Error(`demo model missing at ${DEMO_MODEL}`);
      await runBots(o, spawnEngine(o));
    });
  program
    .command('bot')
    .description('run the chat adapters only, against the queue at --redis')
    .option('--models-file <file>', 'JSON models file (families, defaults, tokenizers)')
    .option('--redis <url>', 'Redis URL', redisDefault)
    .action(async (o: Omit<StartOptions, 'model'>) => runBots({ ...o, model: [] }, null));
}
