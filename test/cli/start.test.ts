/**
 * `sdbot start` (npm start's entry) as a new user runs it: no REDIS_URL, no chat credentials, a throwaway state
 * folder. Redis, the engine worker and the web chat come up; SIGTERM stops all of them and exits 0.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureRedisServer, INSTALL_COMMAND, portIsFree } from '../../src/cli/local-redis.js';
import { RedisQueueClient } from '../../src/queue/redis-client.js';
import { silentLogger } from '../../src/queue/logger.js';
import { ROOT, waitFor } from '../helpers/engine-procs.js';
import { freePort } from '../helpers/redis-server.js';

describe('sdbot start', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'sdbot-state-'));
  afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

  it('brings up Redis, an engine and the web chat, and stops them all on SIGTERM', async () => {
    const [redisPort, webPort] = [await freePort(), await freePort()];
    const env: NodeJS.ProcessEnv = { ...process.env, SDBOT_STATE_DIR: stateDir, WEB_PORT: String(webPort), METRICS_PORT: '0', LOG_LEVEL: 'info' };
    for (const k of ['REDIS_URL', 'DISCORD_TOKEN', 'SLACK_BOT_TOKEN', 'WEB_CHAT', 'WEB_HOST']) delete env[k];
    const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'start', '--redis-port', String(redisPort)], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    const redisUrl = `redis://127.0.0.1:${redisPort}`;
    let client: RedisQueueClient | null = null;
    try {
      const base = `http://127.0.0.1:${webPort}`;
      await waitFor('the web chat', async () => (await fetch(`${base}/healthz`).catch(() => null))?.ok, 60_000, 200);
      expect(await (await fetch(base)).text()).toContain('sdbot');
      expect(out).toContain('No chat credentials set');
      expect(out).toContain(`Web chat: open http://127.0.0.1:${webPort}/`);
      client = await RedisQueueClient.connect({ redisUrl, logger: silentLogger });
      await waitFor('the engine worker', async () => (await client?.models())?.includes('tiny-sd15'), 60_000, 200);
      const hints = (await (await fetch(`${base}/api/hints`)).json()) as { notice?: string };
      expect(hints.notice).toMatch(/smoke-test model.*its pictures are noise/);
      await client.close();
      client = null;
      expect(existsSync(join(stateDir, 'redis', 'appendonlydir'))).toBe(true);
      const engineLine = out.split('\n').find((l) => l.includes('engine worker started')) ?? '{}';
      const enginePid = (JSON.parse(engineLine) as { pid?: number }).pid ?? 0;
      expect(enginePid).toBeGreaterThan(0);

      proc.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(out).toMatch(/stopped web chat[\s\S]*stopped engine worker[\s\S]*stopped Redis/);
      expect(await portIsFree(redisPort)).toBe(true);
      expect(await portIsFree(webPort)).toBe(true);
      expect(() => process.kill(enginePid, 0)).toThrow();
      const r = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      r.on('error', () => undefined);
      await expect(r.connect()).rejects.toThrow();
      r.disconnect();
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- sdbot start output ---\n${out.slice(-6000)}`);
    } finally {
      await client?.close();
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
  }, 120_000);

  it('without redis-server and without root, names the one command that installs it', () => {
    expect(() => ensureRedisServer(() => undefined, 'redis-server-that-does-not-exist', false)).toThrow(INSTALL_COMMAND);
  });
});
