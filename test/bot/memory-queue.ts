/**
 * An in-process QueueClient with a simulated worker, for adapter tests and the bot benchmark: the real one
 * (Redis + engine) is exercised by the end-to-end test. Each job reports queued → started → progress with previews
 * → completed with real PNGs (a solid colour per seed, carrying a `parameters` chunk). A prompt containing
 * "explode" fails the way an engine error does.
 */
import sharp from 'sharp';
import { randomUUID } from 'node:crypto';
import type {
  AdminQueueClient, DefaultModelScope, EnqueueReceipt, JobUpdate, QueueControl, QueueHealth, StoredImage, WorkerDetails, WorkerInfo,
} from '../../src/queue/client.js';
import { seedForImage, type GenerationRequest, type ImageRef, type Origin } from '../../src/queue/job.js';
import { addPngText } from '../../src/engine/image/index.js';

export interface MemoryQueueOptions {
  models?: string[];
  steps?: number;
  stepMs?: number;
  /** Default size when a request leaves it to the model. */
  size?: number;
}

export class MemoryQueue implements AdminQueueClient {
  readonly requests = new Map<string, GenerationRequest>();
  readonly enqueued: { jobId: string; request: GenerationRequest; at: number }[] = [];
  readonly inputs = new Map<string, Uint8Array>();
  private readonly images = new Map<string, Uint8Array>();
  private readonly listeners = new Map<string, Set<(u: JobUpdate) => void>>();
  private readonly cancelled = new Set<string>();
  /** Finished jobs' stored images (their keys in `images`), as the real queue keeps them until their TTL. */
  private readonly results = new Map<string, StoredImage[]>();
  /** Default models by scope field ("global", "guild:<id>", "channel:<id>"). */
  readonly defaults = new Map<string, string>();
  /** Admin commands received, in order. */
  readonly controls: QueueControl[] = [];
  paused = false;
  private running: Promise<void> = Promise.resolve();
  modelList: string[];

  constructor(private readonly opts: MemoryQueueOptions = {}) {
    this.modelList = opts.models ?? ['tiny-sd15'];
  }

  async enqueue(request: GenerationRequest): Promise<EnqueueReceipt> {
    const jobId = randomUUID();
    this.requests.set(jobId, request);
    this.enqueued.push({ jobId, request, at: performance.now() });
    // One simulated worker: jobs run one after another.
    this.running = this.running.then(() => this.work(jobId, request)).catch(() => undefined);
    return { jobId, position: 1 };
  }

  subscribe(jobId: string, listener: (u: JobUpdate) => void): () => void {
    const set = this.listeners.get(jobId) ?? new Set();
    set.add(listener);
    this.listeners.set(jobId, set);
    return () => set.delete(listener);
  }

  private emit(u: JobUpdate): void {
    for (const l of this.listeners.get(u.jobId) ?? []) l(u);
  }

  private async work(jobId: string, request: GenerationRequest): Promise<void> {
    await tick(1);
    this.emit({ type: 'started', jobId, worker: 'mem-1' });
    const total = request.steps ?? this.opts.steps ?? 4;
    for (let step = 1; step <= total; step++) {
      await tick(this.opts.stepMs ?? 5);
      if (this.cancelled.has(jobId)) return this.emit({ type: 'cancelled', jobId, by: 'admin' });
      this.emit({ type: 'progress', jobId, step, total, preview: await solidPng(8, 8, step * 30) });
    }
    if (request.prompt.includes('explode')) {
      return this.emit({ type: 'failed', jobId, reason: 'BadRequestError: the UNet ran out of memory at 2048x2048' });
    }
    const width = request.width ?? this.opts.size ?? 64;
    const height = request.height ?? this.opts.size ?? 64;
    const stored: StoredImage[] = [];
    for (let i = 0; i < request.count; i++) {
      const seed = seedForImage(request.seed, i).toString();
      const png = addPngText(await solidPng(width, height, Number(BigInt(seed) % 256n)), [{ keyword: 'parameters', text: `${request.prompt}\nSeed: ${seed}` }]);
      const key = `res:${jobId}:${i}`;
      this.images.set(key, png);
      stored.push({ key, seed, width, height });
    }
    this.results.set(jobId, stored);
    this.emit({ type: 'completed', jobId, images: stored, notes: [], timings: { loadMs: 0, textMs: 0, denoiseMs: 0, unetMs: 0, decodeMs: 0, totalMs: 0 } });
  }

  async getRequest(jobId: string): Promise<GenerationRequest | null> {
    return this.requests.get(jobId) ?? null;
  }

  async getImage(key: string): Promise<Uint8Array | null> {
    return this.images.get(key) ?? null;
  }

  async putInput(bytes: Uint8Array): Promise<ImageRef> {
    const key = `in:${randomUUID()}`;
    this.inputs.set(key, bytes);
    return { kind: 'redis', key };
  }

  async cancel(jobId: string): Promise<'cancelled' | 'not-found' | 'forbidden' | 'finished'> {
    if (!this.requests.has(jobId)) return 'not-found';
    this.cancelled.add(jobId);
    return 'cancelled';
  }

  async workers(): Promise<WorkerInfo[]> {
    return (await this.workerDetails()).map(({ available: _a, defaultModel: _d, ...info }) => info);
  }

  async workerDetails(): Promise<WorkerDetails[]> {
    return [{
      id: 'mem-1', host: 'localhost', device: 'cpu', models: [...this.modelList], currentJob: null, stepsPerSecond: null, paused: this.paused,
      lastSeen: Date.now(), available: [...this.modelList], defaultModel: this.modelList[0] ?? null,
    }];
  }

  /** Records the command; pause / resume / load / unload change what `workers()` reports. */
  async control(msg: QueueControl): Promise<void> {
    this.controls.push(msg);
    if (msg.cmd === 'pause' || msg.cmd === 'resume') this.paused = msg.cmd === 'pause';
    else if (msg.cmd === 'load' && !this.modelList.includes(msg.model)) this.modelList.push(msg.model);
    else if (msg.cmd === 'unload') this.modelList = this.modelList.filter((m) => m !== msg.model);
  }

  async setDefaultModel(scope: DefaultModelScope, model: string | null): Promise<void> {
    if (model === null) this.defaults.delete(scopeField(scope));
    else this.defaults.set(scopeField(scope), model);
  }

  async getDefaultModel(scope: DefaultModelScope): Promise<string | null> {
    return this.defaults.get(scopeField(scope)) ?? null;
  }

  async listDefaultModels(): Promise<{ scope: DefaultModelScope; model: string }[]> {
    return [...this.defaults].map(([f, model]) => {
      const [kind, ...id] = f.split(':');
      const scope: DefaultModelScope = kind === 'guild' || kind === 'channel' ? { kind, id: id.join(':') } : { kind: 'global' };
      return { scope, model };
    });
  }

  async defaultModelFor(origin: Pick<Origin, 'guildId' | 'channelId'>): Promise<string | null> {
    return (
      (origin.channelId ? this.defaults.get(`channel:${origin.channelId}`) : undefined) ??
      (origin.guildId ? this.defaults.get(`guild:${origin.guildId}`) : undefined) ??
      this.defaults.get('global') ??
      this.modelList[0] ??
      null
    );
  }

  /** Jobs enqueued and not yet finished, all counted against their model. */
  async depths(): Promise<Record<string, number>> {
    const out: Record<string, number> = Object.fromEntries(this.modelList.map((m) => [m, 0]));
    for (const { jobId, request } of this.enqueued) {
      if (!this.results.has(jobId) && !this.cancelled.has(jobId)) out[request.model] = (out[request.model] ?? 0) + 1;
    }
    return out;
  }

  async health(): Promise<QueueHealth> {
    return { ok: true, redis: 'memory', workers: 1 };
  }

  async getResult(jobId: string): Promise<StoredImage[] | null> {
    const stored = this.results.get(jobId);
    return stored && stored.every((s) => this.images.has(s.key)) ? stored : null;
  }

  /** Forget a job's stored images, as their TTL would. */
  expireResult(jobId: string): void {
    for (const s of this.results.get(jobId) ?? []) this.images.delete(s.key);
  }

  async models(): Promise<string[]> {
    return [...this.modelList];
  }

  async close(): Promise<void> {
    await this.running;
  }
}

function scopeField(s: DefaultModelScope): string {
  return s.kind === 'global' ? 'global' : `${s.kind}:${s.id}`;
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function solidPng(width: number, height: number, shade: number): Promise<Uint8Array> {
  const buf = await sharp({ create: { width, height, channels: 3, background: { r: shade, g: 255 - shade, b: (shade * 7) % 256 } } }).png().toBuffer();
  return new Uint8Array(buf);
}
