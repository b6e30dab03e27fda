/**
 * A throwaway Redis for integration tests: starts its own `redis-server` on a free port when the binary exists,
 * else uses REDIS_URL, else fails with a message that says how to fix it. Also a TCP proxy that can cut and restore
 * every connection, to test what happens when Redis drops away under a running system.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export interface TestRedis {
  url: string;
  port: number;
  /** A key prefix unique to this server/test file, so a shared REDIS_URL never mixes runs. */
  prefix: string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function hasRedisServer(): boolean {
  const r = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  return r.status === 0;
}

async function waitForPing(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => {});
    try {
      await r.connect();
      await r.ping();
      r.disconnect();
      return;
    } catch (e) {
      r.disconnect();
      if (Date.now() > deadline) throw new Error(`redis at ${url} did not answer PING: ${(e as Error).message}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  }
}

export async function startRedis(): Promise<TestRedis> {
  const prefix = `t${process.pid}x${Math.random().toString(36).slice(2, 8)}`;
  if (!hasRedisServer()) {
    const url = process.env.REDIS_URL;
    if (!url) {
      throw new Error(
        'Queue tests need Redis: install redis-server (apt-get install redis-server) or set REDIS_URL=redis://host:port',
      );
    }
    await waitForPing(url, 5000);
    return { url, port: Number(new URL(url).port || 6379), prefix, stop: async () => {} };
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sdbot-redis-'));
  const proc: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  await waitForPing(url, 10_000);
  return {
    url,
    port,
    prefix,
    stop: async () => {
      if (proc.exitCode === null) {
        const exited = new Promise((res) => proc.once('exit', res));
        proc.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Forwards TCP to Redis; `cut()` drops every connection and refuses new ones until `restore()`. */
export interface CuttableProxy {
  url: string;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<CuttableProxy> {
  const sockets = new Set<Socket>();
  let down = false;
  const server: Server = createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const port = await freePort();
  await new Promise<void>((res) => server.listen(port, '127.0.0.1', res));
  return {
    url: `redis://127.0.0.1:${port}`,
    cut() {
      down = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    restore() {
      down = false;
    },
    close: () =>
      new Promise((res) => {
        for (const s of sockets) s.destroy();
        server.close(() => res());
      }),
  };
}
