/**
 * The engine worker: consumes the BullMQ queue of every model it holds and runs each job on the engine.
 *
 * Guarantees, and where they come from:
 * - Locks never starve: the engine given here should be a ChildProcessEngine (the `sdbot engine` default), so the
 *   denoising loop runs in another process and this event loop is free to renew locks and heartbeat.
 * - One job at a time per GPU (`concurrency`, default 1) across all model queues: a process-wide gate; while it is
 *   full the other model queues stop fetching, and a job fetched in the race is handed back (moveToWait) at once.
 * - Crash safety: a job whose worker dies is moved back by BullMQ's stalled check on another worker and re-run. Its
 *   result reaches the user once: the terminal update is written with SET NX (events.ts), and a re-run that finds
 *   it publishes nothing.
 * - Cancel: the owner's cancel sets a key and publishes on the control channel; the running job's AbortSignal fires
 *   (from the message, or the key poll if the message was lost) and the engine stops between steps.
 * - Timeouts fail the job (no retry). Transient engine errors retry with exponential backoff; BadRequestError fails
 *   at once with its message.
 * - SIGTERM (`shutdown()`): stop fetching, let the running job finish within the grace period, else hand it back to
 *   the queue (moveToWait) for another worker. Nothing is lost.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Engine } from '../engine/engine.js';
import { applyModelDefaults, type ModelConfigEntry } from '../engine/models-file.js';
import { createRedis } from './connection.js';
import { listenControl, type ControlMessage } from './control.js';
import { EventPublisher } from './events.js';
import { BadRequestError, generationRequestSchema } from './job.js';
import { DEFAULT_RETRY, type QueuedJob, type QueuedJobResult } from './job-data.js';
import { QueueKeys } from './keys.js';
import { silentLogger, type Logger } from './logger.js';
import { WorkerMetrics } from './metrics.js';
import { queueDepths } from './positions.js';
import { DEFAULT_HEARTBEAT_MS, WorkerRegistry, type WorkerHeartbeat } from './registry.js';
import { DEFAULT_RESULT_TTL_MS } from './result-store.js';

export interface EngineWorkerOptions {
  redisUrl: string;
  prefix?: string;
  engine: Engine;
  /** Every model this worker knows; those with `load` are loaded at start. */
  models: ModelConfigEntry[];
  defaultModel?: string | null;
  id?: string;
  /** Jobs at once on this engine (default 1: one per GPU). */
  concurrency?: number;
  /** BullMQ lock: a worker silent this long loses the job to the stalled check (default 30 s). */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  /** Times a job may be recovered from dead workers before it fails (default 5). */
  maxStalledCount?: number;
  heartbeatMs?: number;
  /** Per-job limit on engine time (default 10 min). */
  jobTimeoutMs?: number;
  /** How long SIGTERM waits for the running job before handing it back (default 60 s). */
  shutdownGraceMs?: number;
  resultTtlMs?: number;
  cancelPollMs?: number;
  /** Progress updates at most this often (the first and last step always go out). */
  progressIntervalMs?: number;
  /** Preview images at most this often (default 1.5 s). */
  previewIntervalMs?: number;
  logger?: Logger;
  metrics?: WorkerMetrics;
  /** Called once a `drain` command has finished the running job and stopped the worker. */
  onDrained?: () => void;
}

type AbortWhy = { kind: 'cancel'; by: string } | { kind: 'timeout' } | { kind: 'shutdown' };

interface Running {
  model: string;
  abort(why: AbortWhy): void;
  stepsPerSecond: number | null;
}

export class EngineWorker {
  readonly id: string;
  readonly metrics: WorkerMetrics;
  private readonly keys: QueueKeys;
  /** BullMQ's connection (plain). */
  private readonly redis: Redis;
  /** Our own commands (begin / finish scripts, cancel polls, heartbeats), auto-pipelined across concurrent jobs. */
  private readonly fast: Redis;
  private readonly sub: Redis;
  private readonly events: EventPublisher;
  private readonly registry: WorkerRegistry;
  private readonly log: Logger;
  private readonly queues = new Map<string, Worker<QueuedJob, QueuedJobResult>>();
  private readonly running = new Map<string, Running>();
  private readonly entries = new Map<string, ModelConfigEntry>();
  private readonly concurrency: number;
  private heartbeat: NodeJS.Timeout | null = null;
  private adminPaused = false;
  private stopping: Promise<void> | null = null;
  private lastStepsPerSecond: number | null = null;

  constructor(private readonly opts: EngineWorkerOptions) {
    this.id = opts.id ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.keys = new QueueKeys(opts.prefix);
    this.redis = createRedis(opts.redisUrl);
    this.fast = createRedis(opts.redisUrl, { autoPipeline: true });
    this.sub = createRedis(opts.redisUrl);
    this.events = new EventPublisher(this.fast, this.keys, opts.resultTtlMs ?? DEFAULT_RESULT_TTL_MS);
    this.registry = new WorkerRegistry(this.fast, this.keys);
    this.log = (opts.logger ?? silentLogger).child({ worker: this.id });
    this.metrics = opts.metrics ?? new WorkerMetrics(false);
    this.metrics.setDepthProbe(() => queueDepths(this.fast, this.keys, [...this.queues.keys()]));
    this.concurrency = Math.max(1, opts.concurrency ?? 1);
    for (const m of opts.models) this.entries.set(m.id, m);
  }

  /** Loads the start-up models, begins consuming their queues, heartbeats and listens for admin commands. */
  async start(): Promise<void> {
    await listenControl(this.sub, this.keys, (m) => void this.onControl(m), (raw) => this.log.warn({ raw }, 'bad control message'));
    for (const m of this.opts.models) if (m.load) await this.load(m);
    await this.beat();
    this.heartbeat = setInterval(() => void this.beat(), this.opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
    this.log.info({ models: [...this.queues.keys()], device: this.opts.engine.device }, 'engine worker ready');
  }

  get models(): string[] {
    return [...this.queues.keys()];
  }

  get isPaused(): boolean {
    return this.adminPaused;
  }

  // ---- models ---------------------------------------------------------------------------------------------------

  async load(entry: ModelConfigEntry): Promise<void> {
    if (this.queues.has(entry.id)) return;
    const t0 = Date.now();
    await this.opts.engine.loadModel({
      id: entry.id, dir: entry.dir,
      ...(entry.controlnets ? { controlnets: entry.controlnets } : {}),
      ...(entry.depthEstimator ? { depthEstimator: entry.depthEstimator } : {}),
    });
    this.entries.set(entry.id, entry);
    const w = new Worker<QueuedJob, QueuedJobResult>(this.keys.queueName(entry.id), (job, token, signal) => this.gated(job, token, signal), {
      connection: this.redis,
      prefix: this.keys.prefix,
      concurrency: this.concurrency,
      lockDuration: this.opts.lockDurationMs ?? 30_000,
      stalledInterval: this.opts.stalledIntervalMs ?? 30_000,
      maxStalledCount: this.opts.maxStalledCount ?? 5,
      autorun: false,
    });
    w.on('failed', (job, err) => void this.onBullFailed(job, err));
    w.on('error', (err) => this.log.warn({ err: err.message, model: entry.id }, 'queue connection error'));
    this.queues.set(entry.id, w);
    void w.run();
    this.refreshFetching();
    this.log.info({ model: entry.id, dir: entry.dir, loadMs: Date.now() - t0 }, 'model loaded');
    await this.beat();
  }

  async unload(id: string): Promise<void> {
    const w = this.queues.get(id);
    if (!w) return;
    this.queues.delete(id);
    await w.close(); // waits for its running job
    await this.opts.engine.unloadModel(id);
    this.log.info({ model: id }, 'model unloaded');
    await this.beat();
  }

  // ---- admin commands -------------------------------------------------------------------------------------------

  private async onControl(m: ControlMessage): Promise<void> {
    if (m.cmd === 'cancel') {
      this.running.get(m.jobId)?.abort({ kind: 'cancel', by: m.by });
      return;
    }
    if (m.worker && m.worker !== this.id) return;
    try {
      switch (m.cmd) {
        case 'load': {
          const entry = this.entries.get(m.model) ?? (m.dir ? { id: m.model, dir: m.dir, load: true } : null);
          if (!entry) {
            if (m.worker) this.log.warn({ model: m.model }, 'asked to load a model this worker does not know');
            return;
          }
          await this.load(entry);
          return;
        }
        case 'unload':
          await this.unload(m.model);
          return;
        case 'pause':
          this.adminPaused = true;
          this.refreshFetching();
          await this.beat();
          return;
        case 'resume':
          this.adminPaused = false;
          this.refreshFetching();
          await this.beat();
          return;
        case 'drain':
          await this.shutdown();
          this.opts.onDrained?.();
          return;
      }
    } catch (e) {
      this.log.error({ err: (e as Error).message, cmd: m.cmd }, 'control command failed');
    }
  }

  // ---- the gate: one job per GPU across all model queues ----------------------------------------------------------

  private refreshFetching(): void {
    const full = this.running.size >= this.concurrency;
    for (const [model, w] of this.queues) {
      const busyHere = [...this.running.values()].some((r) => r.model === model);
      const shouldPause = this.adminPaused || this.stopping !== null || (full && !busyHere);
      if (shouldPause && !w.isPaused()) void w.pause(true);
      else if (!shouldPause && w.isPaused()) void w.resume();
    }
  }

  private async gated(job: Job<QueuedJob, QueuedJobResult>, token: string | undefined, signal?: AbortSignal): Promise<QueuedJobResult> {
    if (this.running.size >= this.concurrency || this.stopping || this.adminPaused) {
      // Fetched while this worker should not take jobs: BullMQ's pause stops new fetches, but a fetch already
      // blocked waiting for a job still takes one; and two model queues can race for one free engine.
      // Give it back at once for any free worker.
      await job.moveToWait(token);
      throw new WaitingError();
    }
    return this.process(job, token, signal);
  }

  // ---- one job ----------------------------------------------------------------------------------------------------

  private async process(job: Job<QueuedJob, QueuedJobResult>, token: string | undefined, bullSignal?: AbortSignal): Promise<QueuedJobResult> {
    const jobId = job.id!;
    const request = generationRequestSchema.parse(job.data.request);
    const model = request.model;
    const userId = request.origin.userId;
    const attempt = job.attemptsMade + 1;
    const log = this.log.child({ jobId, model, attempt });

    const begun = await this.events.begin(jobId, this.id);
    if (begun.kind === 'done') {
      log.info('job already finished (re-run after a crash); not running it again');
      return { outcome: 'duplicate', images: [] };
    }
    if (begun.kind === 'cancelled') {
      await this.events.recordTerminal({ type: 'cancelled', jobId, by: begun.by }, userId);
      this.metrics.jobs.inc({ model, outcome: 'cancelled' });
      return { outcome: 'cancelled', images: [] };
    }

    const ac = new AbortController();
    let why: AbortWhy | null = null;
    const abort = (w: AbortWhy) => {
      if (why) return;
      why = w;
      log.info({ why: w.kind }, 'stopping job');
      ac.abort(new Error(w.kind));
    };
    const entry: Running = { model, abort, stepsPerSecond: null };
    this.running.set(jobId, entry);
    this.refreshFetching();
    this.metrics.busy.set(this.running.size);
    const onBullAbort = () => abort({ kind: 'cancel', by: String(bullSignal?.reason ?? 'worker') });
    bullSignal?.addEventListener('abort', onBullAbort, { once: true });
    const timeoutMs = this.opts.jobTimeoutMs ?? 10 * 60_000;
    const timer = setTimeout(() => abort({ kind: 'timeout' }), timeoutMs);
    // The cancel message may be lost (pub/sub while a connection is down): the flag is the source of truth.
    const poll = setInterval(() => {
      this.fast.get(this.keys.cancel(jobId)).then((by) => by && abort({ kind: 'cancel', by }), () => {});
    }, this.opts.cancelPollMs ?? 500);

    const started = Date.now();
    this.metrics.waitSeconds.observe({ model }, (started - job.timestamp) / 1000);
    log.info({ waitMs: started - job.timestamp }, 'job started');
    const finish = (outcome: string) => {
      this.metrics.runSeconds.observe({ model, outcome }, (Date.now() - started) / 1000);
      this.metrics.jobs.inc({ model, outcome });
    };
    try {
      const result = await this.opts.engine.runJob(applyModelDefaults(request, this.entries.get(model)?.defaults), {
        signal: ac.signal,
        onProgress: this.progressPublisher(jobId, entry, log),
      });
      const images = result.images.map((img) => ({ key: this.keys.image(randomUUID()), png: img.png }));
      const first = await this.events.recordTerminal(
        {
          type: 'completed',
          jobId,
          images: result.images.map((img, i) => ({ key: images[i]!.key, seed: img.seed, width: img.width, height: img.height })),
          notes: result.notes,
          timings: result.timings,
        },
        userId,
        { images, model, runMs: Date.now() - started },
      );
      const keys = images.map((i) => i.key);
      finish('completed');
      log.info({ runMs: Date.now() - started, images: keys.length, duplicate: !first }, 'job completed');
      return { outcome: first ? 'completed' : 'duplicate', images: keys };
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      const w = why as AbortWhy | null;
      if (w?.kind === 'cancel') {
        await this.events.recordTerminal({ type: 'cancelled', jobId, by: w.by }, userId);
        finish('cancelled');
        return { outcome: 'cancelled', images: [] };
      }
      if (w?.kind === 'shutdown') {
        log.info('handing the job back to the queue (shutdown)');
        await job.moveToWait(token);
        throw new WaitingError();
      }
      if (w?.kind === 'timeout') {
        const reason = `the job took longer than ${Math.round(timeoutMs / 1000)} s and was stopped`;
        this.metrics.failures.inc({ model, reason: 'timeout' });
        await this.events.recordTerminal({ type: 'failed', jobId, reason }, userId);
        finish('failed');
        throw new UnrecoverableError(reason);
      }
      if (err instanceof BadRequestError) {
        this.metrics.failures.inc({ model, reason: 'bad_request' });
        await this.events.recordTerminal({ type: 'failed', jobId, reason: err.message }, userId);
        finish('failed');
        log.info({ reason: err.message }, 'bad request');
        throw new UnrecoverableError(err.message);
      }
      const crashed = err.message.startsWith('engine process exited');
      this.metrics.failures.inc({ model, reason: crashed ? 'engine_crash' : 'engine_error' });
      const attempts = job.opts.attempts ?? 1;
      if (attempt >= attempts) {
        await this.events.recordTerminal({ type: 'failed', jobId, reason: `the engine failed: ${err.message}` }, userId);
        finish('failed');
      }
      log.warn({ err: err.message, willRetry: attempt < attempts }, 'engine error');
      throw err;
    } finally {
      clearTimeout(timer);
      clearInterval(poll);
      bullSignal?.removeEventListener('abort', onBullAbort);
      this.running.delete(jobId);
      this.metrics.busy.set(this.running.size);
      this.refreshFetching();
    }
  }

  private progressPublisher(jobId: string, entry: Running, log: Logger) {
    const progressEvery = this.opts.progressIntervalMs ?? 200;
    const previewEvery = this.opts.previewIntervalMs ?? 1500;
    let lastProgress = 0;
    let lastPreview = 0;
    let firstStepAt = 0;
    return (e: { step: number; total: number; preview?: Uint8Array }) => {
      const now = Date.now();
      if (e.step <= 1 || firstStepAt === 0) firstStepAt = now;
      else {
        entry.stepsPerSecond = (e.step - 1) / ((now - firstStepAt) / 1000);
        this.lastStepsPerSecond = entry.stepsPerSecond;
        this.metrics.stepsPerSecond.set({ model: entry.model }, entry.stepsPerSecond);
      }
      const edge = e.step <= 1 || e.step === e.total;
      const withPreview = e.preview !== undefined && now - lastPreview >= previewEvery;
      if (!edge && !withPreview && now - lastProgress < progressEvery) return;
      lastProgress = now;
      if (withPreview) lastPreview = now;
      this.events
        .publish({ type: 'progress', jobId, step: e.step, total: e.total, ...(withPreview ? { preview: e.preview } : {}) })
        .catch((err: unknown) => log.warn({ err: String(err) }, 'progress update lost'));
    };
  }

  /** BullMQ failed a job outside our processor (stalled too often): make sure the user still hears about it. */
  private async onBullFailed(job: Job<QueuedJob, QueuedJobResult> | undefined, err: Error): Promise<void> {
    if (!job?.id) return;
    try {
      if ((await job.getState()) !== 'failed') return;
      const userId = job.data.request.origin?.userId ?? 'unknown';
      await this.events.recordTerminal({ type: 'failed', jobId: job.id, reason: `the job could not be run: ${err.message}` }, userId);
    } catch (e) {
      this.log.warn({ jobId: job.id, err: (e as Error).message }, 'could not record a failed job');
    }
  }

  // ---- heartbeats -------------------------------------------------------------------------------------------------

  private heartbeatInfo(): WorkerHeartbeat {
    const current = [...this.running.entries()][0];
    return {
      id: this.id,
      host: hostname(),
      device: this.opts.engine.device,
      models: [...this.queues.keys()],
      available: [...this.entries.keys()],
      defaultModel: this.opts.defaultModel ?? null,
      currentJob: current?.[0] ?? null,
      stepsPerSecond: current?.[1].stepsPerSecond ?? this.lastStepsPerSecond,
      paused: this.adminPaused || this.stopping !== null,
      lastSeen: Date.now(),
    };
  }

  private async beat(): Promise<void> {
    if (this.stopping && this.queues.size === 0) return;
    const every = this.opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    try {
      await this.registry.beat(this.heartbeatInfo(), every * 3);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'heartbeat failed');
    }
  }

  async health(): Promise<{ ok: boolean; worker: string; redis: string; models: string[]; currentJob: string | null; paused: boolean }> {
    const hb = this.heartbeatInfo();
    return { ok: this.redis.status === 'ready' && this.stopping === null, worker: this.id, redis: this.redis.status, models: hb.models, currentJob: hb.currentJob, paused: hb.paused };
  }

  // ---- shutdown ---------------------------------------------------------------------------------------------------

  /** Graceful stop: no new jobs; the running one finishes within the grace period or goes back to the queue. */
  shutdown(graceMs = this.opts.shutdownGraceMs ?? 60_000): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info({ running: [...this.running.keys()], graceMs }, 'shutting down');
      this.refreshFetching();
      const handBack = setTimeout(() => {
        for (const r of this.running.values()) r.abort({ kind: 'shutdown' });
      }, graceMs);
      await Promise.all([...this.queues.values()].map((w) => w.close()));
      clearTimeout(handBack);
      this.queues.clear();
      if (this.heartbeat) clearInterval(this.heartbeat);
      await this.registry.remove(this.id).catch(() => {});
      await this.opts.engine.close();
      this.sub.disconnect();
      await this.redis.quit().catch(() => {});
      await this.fast.quit().catch(() => {});
      this.log.info('stopped');
    })();
    return this.stopping;
  }
}
