/**
 * `sdbot start` (npm start's entry) as a new user runs it: no REDIS_URL, no chat credentials, a throwaway state
 * folder. Redis, the engine worker and the web chat come up; SIGTERM stops all of them and exits 0. A start killed
 * with SIGKILL leaves its Redis running; the next start on that state folder takes it over instead of running a
 * second redis-server on the same files.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureRedisServer, INSTALL_COMMAND, portIsFree } from '../../src/cli/local-redis.js';
import { RedisQueueClient } from '../../src/queue/redis-client.js';
import { silentLogger } from '../../src/queue/logger.js';
import { ROOT, waitFor } from '../helpers/engine-procs.js';
import { freePort, startRedis } from '../helpers/redis-server.js';
import { FakeDiscord } from '../fakes/discord/server.js';
import { FakeSlack } from '../fakes/slack/server.js';

interface Started {
  proc: ChildProcessWithoutNullStreams;
  output(): string;
  exited: Promise<number | null>;
  web: string;
}

function startSdbot(stateDir: string, redisPort: number | null, webPort: number, extraEnv: NodeJS.ProcessEnv = {}): Started {
  const env: NodeJS.ProcessEnv = { ...process.env, SDBOT_STATE_DIR: stateDir, WEB_PORT: String(webPort), METRICS_PORT: '0', LOG_LEVEL: 'info' };
  for (const k of ['REDIS_URL', 'DISCORD_TOKEN', 'SLACK_BOT_TOKEN', 'WEB_CHAT', 'WEB_HOST']) delete env[k];
  Object.assign(env, extraEnv);
  const args = ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'start', ...(redisPort === null ? [] : ['--redis-port', String(redisPort)])];
  const proc = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, output: () => out, exited, web: `http://127.0.0.1:${webPort}` };
}

function logged(out: string, msg: string): { pid?: number } {
  const line = out.split('\n').find((l) => l.includes(msg)) ?? '{}';
  return JSON.parse(line) as { pid?: number };
}

async function redisAnswers(url: string): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/** Runs `body`; on failure adds the process output to the error. */
async function withOutput(s: Started, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- sdbot start output ---\n${s.output().slice(-6000)}`);
  } finally {
    // A failed check still shuts down cleanly: SIGKILL would orphan the Redis and engine children.
    if (s.proc.exitCode === null && s.proc.signalCode === null) {
      s.proc.kill('SIGTERM');
      const timer = setTimeout(() => s.proc.kill('SIGKILL'), 20_000);
      await s.exited;
      clearTimeout(timer);
    }
  }
}

describe('sdbot start', () => {
  const stateDirs: string[] = [];
  const newStateDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'sdbot-state-'));
    stateDirs.push(d);
    return d;
  };
  afterAll(() => stateDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('brings up Redis, an engine and the web chat, and stops them all on SIGTERM', async () => {
    const stateDir = newStateDir();
    const [redisPort, webPort] = [await freePort(), await freePort()];
    const redisUrl = `redis://127.0.0.1:${redisPort}`;
    const s = startSdbot(stateDir, redisPort, webPort);
    await withOutput(s, async () => {
      await waitFor('the web chat', async () => (await fetch(`${s.web}/healthz`).catch(() => null))?.ok, 60_000, 200);
      expect(await (await fetch(s.web)).text()).toContain('sdbot');
      expect(s.output()).toContain('No chat credentials set');
      expect(s.output()).toContain(`Web chat: open ${s.web}/`);
      const client = await RedisQueueClient.connect({ redisUrl, logger: silentLogger });
      try {
        await waitFor('the engine worker', async () => (await client.models()).includes('tiny-sd15'), 60_000, 200);
      } finally {
        await client.close();
      }
      const hints = (await (await fetch(`${s.web}/api/hints`)).json()) as { notice?: string };
      expect(hints.notice).toMatch(/smoke-test model.*its pictures are noise/);
      expect(existsSync(join(stateDir, 'redis', 'appendonlydir'))).toBe(true);
      const enginePid = logged(s.output(), 'engine worker started').pid ?? 0;
      expect(enginePid).toBeGreaterThan(0);

      s.proc.kill('SIGTERM');
      expect(await s.exited).toBe(0);
      expect(s.output()).toMatch(/stopped web chat[\s\S]*stopped engine worker[\s\S]*stopped Redis/);
      expect(await portIsFree(redisPort)).toBe(true);
      expect(await portIsFree(webPort)).toBe(true);
      expect(() => process.kill(enginePid, 0)).toThrow();
      expect(await redisAnswers(redisUrl)).toBe(false);
    });
  }, 120_000);

  it('takes over the Redis a killed start left behind instead of running a second one on the same files', async () => {
    const stateDir = newStateDir();
    const [redisPort, webPort] = [await freePort(), await freePort()];
    const redisUrl = `redis://127.0.0.1:${redisPort}`;
    const first = startSdbot(stateDir, redisPort, webPort);
    let redisPid = 0;
    await withOutput(first, async () => {
      await waitFor('the web chat', async () => (await fetch(`${first.web}/healthz`).catch(() => null))?.ok, 60_000, 200);
      redisPid = logged(first.output(), 'local Redis ready').pid ?? 0;
      const enginePid = logged(first.output(), 'engine worker started').pid ?? 0;
      first.proc.kill('SIGKILL');
      await first.exited;
      process.kill(enginePid, 'SIGTERM'); // an orphaned engine is not this test's subject
    });
    expect(await redisAnswers(redisUrl)).toBe(true);

    const otherPort = await freePort();
    const second = startSdbot(stateDir, otherPort, await freePort());
    await withOutput(second, async () => {
      await waitFor('the web chat', async () => (await fetch(`${second.web}/healthz`).catch(() => null))?.ok, 60_000, 200);
      expect(second.output()).toContain('took over the local Redis');
      expect(logged(second.output(), 'took over').pid).toBe(redisPid);
      expect(await redisAnswers(`redis://127.0.0.1:${otherPort}`)).toBe(false);
      second.proc.kill('SIGTERM');
      expect(await second.exited).toBe(0);
      expect(await redisAnswers(redisUrl)).toBe(false);
      expect(existsSync(join(stateDir, 'redis', 'sdbot-redis.json'))).toBe(false);
    });
  }, 180_000);

  it('with REDIS_URL and Discord + Slack credentials: uses that Redis, connects both adapters, no web chat', async () => {
    const [redis, discord, slack] = [await startRedis(), await FakeDiscord.start(), await FakeSlack.start()];
    const webPort = await freePort();
    const s = startSdbot(newStateDir(), null, webPort, {
      REDIS_URL: redis.url,
      DISCORD_TOKEN: 'fake-discord-token', DISCORD_API_URL: discord.apiUrl,
      SLACK_BOT_TOKEN: slack.botToken, SLACK_SIGNING_SECRET: slack.signingSecret, SLACK_PORT: String(await freePort()), SLACK_API_URL: slack.apiUrl,
    });
    try {
      await withOutput(s, async () => {
        await waitFor('sdbot to be running', async () => s.output().includes('sdbot is running'), 60_000, 200);
        expect(s.output()).toContain('Discord bot connected');
        expect(s.output()).toContain('Slack bot connected');
        expect(s.output()).not.toContain('local Redis ready');
        expect(s.output()).not.toContain('Web chat: open');
        expect(await portIsFree(webPort)).toBe(true);
        expect(discord.identifies.length).toBeGreaterThan(0);
        expect(slack.calls.some((c) => c.method === 'auth.test')).toBe(true);
        s.proc.kill('SIGTERM');
        expect(await s.exited).toBe(0);
        expect(s.output()).toMatch(/stopped Slack bot[\s\S]*stopped Discord bot[\s\S]*stopped engine worker/);
        expect(await redisAnswers(redis.url)).toBe(true);
      });
    } finally {
      await Promise.all([discord.close(), slack.close()]);
      await redis.stop();
    }
  }, 120_000);

  it('without redis-server and without root, names the one command that installs it', () => {
    expect(() => ensureRedisServer(() => undefined, 'redis-server-that-does-not-exist', false)).toThrow(INSTALL_COMMAND);
  });
});
