/**
 * Real engine worker processes for queue tests: `sdbot engine` run by node + tsx, on the fake engine
 * (test/helpers/fake-engine.ts) unless a real engine module is given. Every process started here is tracked so a
 * test's afterAll can kill what is left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { RedisQueueClient } from '../../src/queue/redis-client.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const FAKE_ENGINE = join(ROOT, 'test/helpers/fake-engine.ts');

export interface WorkerProc {
  proc: ChildProcess;
  pid: number;
  output(): string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

const live = new Set<WorkerProc>();

export interface SpawnOptions {
  redisUrl: string;
  prefix: string;
  /** Model folders (`--model`); for the fake engine any path works: the id is the last path segment. */
  models?: string[];
  modelsFile?: string;
  engineModule?: string;
  args?: string[];
}

export function spawnWorker(o: SpawnOptions): WorkerProc {
  const args = [
    '--import', 'tsx', join(ROOT, 'src/cli.ts'), 'engine',
    '--redis', o.redisUrl, '--prefix', o.prefix,
    '--engine-module', o.engineModule ?? FAKE_ENGINE,
    '--lock-ms', '1500', '--stalled-ms', '500', '--heartbeat-ms', '300',
    '--metrics-port', '0', '--metrics-host', '127.0.0.1',
    ...(o.models ?? []).flatMap((m) => ['--model', m]),
    ...(o.modelsFile ? ['--models-file', o.modelsFile] : []),
    ...(o.args ?? []),
  ];
  const proc = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((res) => proc.once('exit', (code, sig) => res(code ?? sig ?? -1)));
  const w: WorkerProc = {
    proc,
    pid: proc.pid!,
    output: () => out,
    exited,
    async kill(signal = 'SIGKILL') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
  live.add(w);
  void exited.then(() => live.delete(w));
  return w;
}

export async function killAllWorkers(): Promise<void> {
  await Promise.all([...live].map((w) => w.kill('SIGKILL')));
}

export async function waitFor<T>(what: string, f: () => Promise<T | null | undefined | false>, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Waits until the worker process heartbeats with all `models` loaded. */
export async function waitForWorker(client: RedisQueueClient, w: WorkerProc, models: string[], timeoutMs = 30_000): Promise<string> {
  return waitFor(
    `worker pid ${w.pid} to serve ${models.join(', ')}`,
    async () => {
      if (w.proc.exitCode !== null) throw new Error(`worker exited early:\n${w.output()}`);
      const found = (await client.workers()).find((x) => x.id.includes(`:${w.pid}:`) && models.every((m) => x.models.includes(m)));
      return found?.id;
    },
    timeoutMs,
  );
}
