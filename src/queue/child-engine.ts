/**
 * An Engine that runs in a child process (engine-child.ts). The worker process only forwards jobs and progress, so
 * its event loop stays free for BullMQ lock renewal and heartbeats however long a job holds the CPU.
 *
 * Guarantees implemented here:
 * - Abort: the job's AbortSignal is forwarded; if the engine does not stop within `abortGraceMs` (stuck in a step),
 *   the child is killed and the job rejects with CancelledError.
 * - Crash: if the child dies, running calls reject with a plain (transient, retryable) Error and the next call
 *   starts a fresh child and reloads the models that were loaded.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Engine, ModelEntry } from '../engine/engine.js';
import { BadRequestError, CancelledError, type GenerationRequest, type GenerationResult, type JobHooks } from './job.js';

export type ChildRequest =
  | { t: 'init'; rid: number; engineModule: string; redisUrl?: string; providers?: ('cuda' | 'tensorrt' | 'cpu')[] }
  | { t: 'load'; rid: number; entry: ModelEntry }
  | { t: 'unload'; rid: number; id: string }
  | { t: 'run'; rid: number; request: GenerationRequest }
  | { t: 'abort'; target: number; reason: string }
  | { t: 'close' };

export type ChildReply =
  | { t: 'reply'; rid: number; ok: true; value: unknown }
  | { t: 'reply'; rid: number; ok: false; error: { name: string; message: string } }
  | { t: 'progress'; rid: number; step: number; total: number; preview?: Uint8Array };

export interface ChildEngineOptions {
  /** Module exporting `createEngine(options): Promise<Engine>` (path or file URL). */
  engineModule: string;
  /** Lets the engine read inputs stored in Redis (ImageRef kind 'redis'). */
  redisUrl?: string;
  providers?: ('cuda' | 'tensorrt' | 'cpu')[];
  abortGraceMs?: number;
}

export const DEFAULT_ENGINE_MODULE = fileURLToPath(new URL('../engine/create-engine.ts', import.meta.url));

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  onProgress?: JobHooks['onProgress'];
}

function childExecArgv(entry: string): string[] {
  if (!entry.endsWith('.ts')) return [];
  // Run TypeScript sources through tsx's loader, resolved from this package so any cwd works.
  const loader = createRequire(import.meta.url).resolve('tsx');
  return ['--import', pathToFileURL(loader).href];
}

function rebuildError(e: { name: string; message: string }): Error {
  if (e.name === 'BadRequestError') return new BadRequestError(e.message);
  if (e.name === 'CancelledError') return new CancelledError(e.message);
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

export class ChildProcessEngine implements Engine {
  private child: ChildProcess | null = null;
  private starting: Promise<void> | null = null;
  private nextRid = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly loaded = new Map<string, ModelEntry>();
  private deviceName = 'unknown';
  private closed = false;

  constructor(private readonly opts: ChildEngineOptions) {}

  get device(): string {
    return this.deviceName;
  }

  /** Child process id (tests kill it to simulate an engine crash). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    await this.ensureChild();
  }

  private ensureChild(): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.connected) return Promise.resolve();
    this.starting ??= this.spawn().finally(() => {
      this.starting = null;
    });
    return this.starting;
  }

  private async spawn(): Promise<void> {
    if (this.closed) throw new Error('engine closed');
    const entry = fileURLToPath(new URL('./engine-child.ts', import.meta.url));
    const child = fork(entry, [], { execArgv: childExecArgv(entry), serialization: 'advanced', stdio: 'inherit' });
    this.child = child;
    child.on('message', (m: ChildReply) => this.onMessage(m));
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = null;
      const err = new Error(`engine process exited (${signal ?? `code ${code}`})`);
      for (const [rid, p] of this.pending) {
        this.pending.delete(rid);
        p.reject(err);
      }
    });
    this.deviceName = (await this.callOn(child, {
      t: 'init',
      rid: this.nextRid++,
      engineModule: this.opts.engineModule,
      redisUrl: this.opts.redisUrl,
      providers: this.opts.providers,
    })) as string;
    for (const entry of this.loaded.values()) await this.callOn(child, { t: 'load', rid: this.nextRid++, entry });
  }

  private onMessage(m: ChildReply): void {
    const p = this.pending.get(m.rid);
    if (!p) return;
    if (m.t === 'progress') {
      p.onProgress?.({ step: m.step, total: m.total, preview: m.preview });
      return;
    }
    this.pending.delete(m.rid);
    if (m.ok) p.resolve(m.value);
    else p.reject(rebuildError(m.error));
  }

  private callOn(child: ChildProcess, req: Exclude<ChildRequest, { t: 'abort' | 'close' }>, onProgress?: JobHooks['onProgress']): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.pending.set(req.rid, { resolve, reject, onProgress });
      child.send(req, (err) => {
        if (err) {
          this.pending.delete(req.rid);
          reject(err);
        }
      });
    });
  }

  private async call(req: Exclude<ChildRequest, { t: 'abort' | 'close' }>, onProgress?: JobHooks['onProgress']): Promise<unknown> {
    await this.ensureChild();
    return this.callOn(this.child!, req, onProgress);
  }

  async loadModel(entry: ModelEntry): Promise<void> {
    await this.call({ t: 'load', rid: this.nextRid++, entry });
    this.loaded.set(entry.id, entry);
  }

  async unloadModel(id: string): Promise<void> {
    await this.call({ t: 'unload', rid: this.nextRid++, id });
    this.loaded.delete(id);
  }

  loadedModels(): string[] {
    return [...this.loaded.keys()];
  }

  async runJob(request: GenerationRequest, hooks: JobHooks = {}): Promise<GenerationResult> {
    await this.ensureChild();
    const child = this.child!;
    const rid = this.nextRid++;
    const { signal } = hooks;
    if (signal?.aborted) throw new CancelledError(reasonOf(signal));
    let grace: NodeJS.Timeout | undefined;
    const onAbort = () => {
      child.send({ t: 'abort', target: rid, reason: reasonOf(signal!) } satisfies ChildRequest);
      grace = setTimeout(() => {
        // The engine did not reach a step boundary in time: stop it the hard way.
        const p = this.pending.get(rid);
        this.pending.delete(rid);
        child.kill('SIGKILL');
        p?.reject(new CancelledError(reasonOf(signal!)));
      }, this.opts.abortGraceMs ?? 10_000);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return (await this.callOn(child, { t: 'run', rid, request }, hooks.onProgress)) as GenerationResult;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      clearTimeout(grace);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.send({ t: 'close' } satisfies ChildRequest);
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}

function reasonOf(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  return r instanceof Error ? r.message : typeof r === 'string' ? r : 'cancelled';
}
