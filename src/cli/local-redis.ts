/**
 * The Redis that `sdbot start` runs when REDIS_URL is not set: a `redis-server` child with its data in the state
 * folder, append-only file on, so queued jobs, admin settings and results survive a restart. Where the binary is
 * missing it installs Debian's package when running as root, and otherwise names the one command that does.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
  pid: number;
  /** True when a redis-server left running by an earlier start (killed with SIGKILL) was taken over. */
  adopted: boolean;
  /** Called if redis-server exits on its own (only known for one this process started). */
  onUnexpectedExit(listener: (code: number | null) => void): void;
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

/** Written next to the data: which redis-server serves this folder, so a later start never runs a second one on it. */
const RUNNING_FILE = 'sdbot-redis.json';
const STOP_TIMEOUT_MS = 20_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

/** A redis-server still serving `dir` from an earlier run whose parent died without stopping it. */
async function findRunning(dir: string): Promise<{ pid: number; port: number } | null> {
  const file = join(dir, RUNNING_FILE);
  if (!existsSync(file)) return null;
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as { pid: number; port: number };
    if (Number.isInteger(r.pid) && alive(r.pid)) {
      await waitForPing(`redis://127.0.0.1:${r.port}`, 1000);
      return r;
    }
  } catch {
    // stale or unreadable: start a fresh one
  }
  rmSync(file, { force: true });
  return null;
}

export async function startLocalRedis(o: LocalRedisOptions): Promise<LocalRedis> {
  mkdirSync(o.dir, { recursive: true });
  const running = await findRunning(o.dir);
  if (running) {
    return {
      url: `redis://127.0.0.1:${running.port}`, port: running.port, dir: o.dir, pid: running.pid, adopted: true,
      onUnexpectedExit: () => undefined,
      output: () => '',
      stop: async () => {
        if (alive(running.pid)) process.kill(running.pid, 'SIGTERM');
        await waitGone(running.pid, STOP_TIMEOUT_MS);
        if (alive(running.pid)) process.kill(running.pid, 'SIGKILL');
        rmSync(join(o.dir, RUNNING_FILE), { force: true });
      },
    };
  }
  const port = o.port ?? ((await portIsFree(DEFAULT_REDIS_PORT)) ? DEFAULT_REDIS_PORT : await freePort());
  // Its own process group: Ctrl-C in the terminal must not stop Redis before the engine has handed back its job.
  const proc = spawn(o.bin ?? 'redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'yes', '--daemonize', 'no',
    '--dir', o.dir, '--appendonly', 'yes', '--appendfsync', 'everysec',
  ], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-4000));
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  let stopping = false;
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const url = `redis://127.0.0.1:${port}`;
  try {
    await waitForPing(url, 15_000, () => proc.exitCode === null && proc.signalCode === null);
  } catch (err) {
    proc.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${out}`);
  }
  writeFileSync(join(o.dir, RUNNING_FILE), JSON.stringify({ pid: proc.pid, port }));
  return {
    url, port, dir: o.dir, pid: proc.pid ?? 0, adopted: false,
    onUnexpectedExit: (listener) => void exited.then((code) => {
      if (!stopping) listener(code);
    }),
    output: () => out,
    stop: async () => {
      stopping = true;
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      // Redis refuses to exit when its final save fails (a full disk, a deleted folder); the append-only file is
      // at most a second behind, so a stuck shutdown ends with SIGKILL rather than hanging `sdbot start`.
      const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
      rmSync(join(o.dir, RUNNING_FILE), { force: true });
    },
  };
}
