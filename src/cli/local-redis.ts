/**
 * The Redis that `sdbot start` runs when REDIS_URL is not set: a `redis-server` child with its data in the state
 * folder, append-only file on, so queued jobs, admin settings and results survive a restart. Where the binary is
 * missing it installs Debian's package when running as root, and otherwise names the one command that does.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

export const INSTALL_COMMAND = 'sudo apt-get install -y redis-server';
export const DEFAULT_REDIS_PORT = 6379;

export class MissingRedisError extends Error {
  override readonly name = 'MissingRedisError';
}

export function hasRedisServer(bin = 'redis-server'): boolean {
  return spawnSync(bin, ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Installs redis-server with apt when we are root; otherwise throws with the command for the user to run. */
export function ensureRedisServer(log: (msg: string) => void, bin = 'redis-server', isRoot = process.getuid?.() === 0): void {
  if (hasRedisServer(bin)) return;
  const hasApt = spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!isRoot || !hasApt) {
    throw new MissingRedisError(`redis-server is not installed. Install it with:\n\n    ${INSTALL_COMMAND}\n\nor set REDIS_URL to a Redis (≥ 6.2) you already run.`);
  }
  log('redis-server is not installed; installing Debian\'s redis-server package (apt-get)…');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update', '-qq'], ['install', '-y', '-qq', 'redis-server']]) {
    const r = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (r.status !== 0) throw new MissingRedisError(`apt-get ${args.join(' ')} failed (exit ${r.status}); install redis-server yourself or set REDIS_URL.`);
  }
  if (!hasRedisServer(bin)) throw new MissingRedisError('redis-server is still missing after apt-get install; set REDIS_URL instead.');
}

export function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function waitForPing(url: string, timeoutMs: number, alive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => undefined);
    try {
      await r.connect();
      await r.ping();
      r.disconnect();
      return;
    } catch (e) {
      r.disconnect();
      if (!alive()) throw new Error('redis-server exited before it answered');
      if (Date.now() > deadline) throw new Error(`redis at ${url} did not answer PING: ${(e as Error).message}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }
}

export interface LocalRedis {
  url: string;
  port: number;
  dir: string;
  proc: ChildProcess;
  /** Last lines redis-server printed (for errors). */
  output(): string;
  /** SIGTERM: redis-server flushes the append-only file and exits. */
  stop(): Promise<void>;
}

export interface LocalRedisOptions {
  dir: string;
  /** Default: 6379 when free, else any free port (a system Redis may hold 6379). */
  port?: number;
  bin?: string;
}

export async function startLocalRedis(o: LocalRedisOptions): Promise<LocalRedis> {
  mkdirSync(o.dir, { recursive: true });
  const port = o.port ?? ((await portIsFree(DEFAULT_REDIS_PORT)) ? DEFAULT_REDIS_PORT : await freePort());
  const proc = spawn(o.bin ?? 'redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'yes', '--daemonize', 'no',
    '--dir', o.dir, '--appendonly', 'yes', '--appendfsync', 'everysec',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-4000));
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const url = `redis://127.0.0.1:${port}`;
  try {
    await waitForPing(url, 15_000, () => proc.exitCode === null && proc.signalCode === null);
  } catch (err) {
    proc.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${out}`);
  }
  return {
    url, port, dir: o.dir, proc,
    output: () => out,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}
