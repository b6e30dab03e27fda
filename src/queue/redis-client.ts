/**
 * QueueClient on BullMQ + Redis: what the bot core uses to enqueue jobs and follow them.
 *
 * Guarantees:
 * - Routing: a job goes to its model's queue; enqueue fails at once with a readable message when no live worker
 *   holds the model (ModelNotLoadedError) instead of leaving it to wait forever.
 * - Fairness: per-user caps and round-robin order between users (fairness.ts); admins' priorities skip the line.
 * - Updates: read from the update stream (events.ts) and delivered to subscribers in this process; each subscriber
 *   gets at most one terminal update. A subscriber that arrives late, or an update lost to a trimmed stream or a
 *   dropped connection, is covered by the job's `done` record, which subscribe() and a periodic check read.
 * - Results and requests are stored under their own keys with TTLs (result-store.ts).
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type {
  DefaultModelScope, EnqueueOptions, EnqueueReceipt, JobUpdate, QueueAdmin, QueueClient, QueueControl, QueueHealth, StoredImage, WorkerInfo,
} from './client.js';
import { createRedis } from './connection.js';
import { DefaultModels, sendControl } from './control.js';
import { EventPublisher, EventStreamReader, decodeUpdate, isTerminal } from './events.js';
import { DEFAULT_USER_CAP, UserSlots, bullPriority } from './fairness.js';
import { BadRequestError, generationRequestSchema, type GenerationRequest, type ImageRef, type Origin } from './job.js';
import { DEFAULT_RETRY, type QueuedJob, type QueuedJobResult, type RetryPolicy } from './job-data.js';
import { QueueKeys } from './keys.js';
import { silentLogger, type Logger } from './logger.js';
import { ClientMetrics } from './metrics.js';
import { addPositionCommands, positionFrom, positionOf, positionsOf, queueDepths } from './positions.js';
import { WorkerRegistry, type WorkerHeartbeat } from './registry.js';
import { DEFAULT_INPUT_TTL_MS, DEFAULT_REQUEST_TTL_MS, DEFAULT_RESULT_TTL_MS, ResultStore } from './result-store.js';

/** The user already has the maximum number of jobs queued or running. */
export class UserCapError extends BadRequestError {}
/** No live worker holds the requested model. */
export class ModelNotLoadedError extends BadRequestError {}

export interface RedisQueueClientOptions {
  redisUrl: string;
  prefix?: string;
  /** Jobs a user may have queued or running at once (default 2). */
  userCap?: number;
  retry?: RetryPolicy;
  resultTtlMs?: number;
  requestTtlMs?: number;
  inputTtlMs?: number;
  /** How often queued subscribers get position updates and finished jobs are double-checked (default 2 s). */
  pollMs?: number;
  /** Accept jobs for models no live worker holds (they wait for one, however long). Default false: fail fast. */
  allowUnservedModels?: boolean;
  /**
   * A model no live worker has held for this long (a worker died or unloaded it) fails its waiting jobs with a
   * readable reason instead of letting them wait forever (default 60 s).
   */
  unservedGraceMs?: number;
  metrics?: ClientMetrics;
  logger?: Logger;
}

/** A job this client enqueued, as far as this process knows. */
interface MyJob {
  model: string;
  /** Enqueue time; once `terminal` is set, the time it arrived. */
  at: number;
  /** Place in line read right after the add. */
  position: { value: number; at: number } | null;
  started?: JobUpdate;
  progress?: JobUpdate;
  /** Arrived before anyone subscribed: replayed to the first subscriber. */
  terminal?: JobUpdate;
}

/** A subscriber this soon after enqueue gets the place in line read by enqueue itself. */
const FRESH_POSITION_MS = 1000;
const KEEP_TERMINAL_MS = 10 * 60_000;
export const DEFAULT_UNSERVED_GRACE_MS = 60_000;

interface Subscription {
  listeners: Set<(u: JobUpdate) => void>;
  phase: 'queued' | 'running' | 'done';
  lastPosition: number | null;
  model: string | null;
  enqueuedAt: number | null;
}

export class RedisQueueClient implements QueueClient, QueueAdmin {
  readonly metrics: ClientMetrics;
  private readonly keys: QueueKeys;
  /** Our own commands, auto-pipelined: concurrent enqueues and reads share writes. */
  private readonly redis: Redis;
  /** BullMQ's connection (plain: no auto-pipelining under its scripts). */
  private readonly bullRedis: Redis;
  private readonly reader: EventStreamReader;
  private readonly events: EventPublisher;
  private readonly store: ResultStore;
  private readonly slots: UserSlots;
  private readonly registry: WorkerRegistry;
  private readonly defaults: DefaultModels;
  private readonly log: Logger;
  private readonly retry: RetryPolicy;
  private readonly bullQueues = new Map<string, Queue<QueuedJob, QueuedJobResult>>();
  private readonly subs = new Map<string, Subscription>();
  /**
   * Jobs this client enqueued: model and time (positions, end-to-end metrics), and the latest 'started' and
   * 'progress' updates, replayed to a subscriber that arrives after them (a job can start before enqueue returns).
   */
  private readonly mine = new Map<string, MyJob>();
  private lastSweep = Date.now();
  private pollTimer: NodeJS.Timeout | null = null;
  private strandTimer: NodeJS.Timeout | null = null;
  /** Since when each model with jobs of ours has had no live worker. */
  private readonly unservedSince = new Map<string, number>();
  private workerCache: { at: number; list: WorkerHeartbeat[] } | null = null;
  private readonly runMs = new Map<string, { at: number; ms: number }>();

  private constructor(private readonly opts: RedisQueueClientOptions) {
    this.keys = new QueueKeys(opts.prefix);
    this.redis = createRedis(opts.redisUrl, { autoPipeline: true });
    this.bullRedis = createRedis(opts.redisUrl);
    this.log = opts.logger ?? silentLogger;
    this.metrics = opts.metrics ?? new ClientMetrics();
    this.retry = opts.retry ?? DEFAULT_RETRY;
    const resultMs = opts.resultTtlMs ?? DEFAULT_RESULT_TTL_MS;
    this.events = new EventPublisher(this.redis, this.keys, resultMs);
    this.store = new ResultStore(this.redis, this.keys, {
      resultMs,
      requestMs: opts.requestTtlMs ?? DEFAULT_REQUEST_TTL_MS,
      inputMs: opts.inputTtlMs ?? DEFAULT_INPUT_TTL_MS,
    });
    this.slots = new UserSlots(this.redis, this.keys, opts.userCap ?? DEFAULT_USER_CAP);
    this.registry = new WorkerRegistry(this.redis, this.keys);
    this.defaults = new DefaultModels(this.redis, this.keys);
    this.reader = new EventStreamReader(createRedis(opts.redisUrl), this.keys, (u) => this.dispatch(u), () => void this.poll());
    this.metrics.setDepthProbe(async () => queueDepths(this.redis, this.keys, await this.models()));
  }

  static async connect(opts: RedisQueueClientOptions): Promise<RedisQueueClient> {
    const c = new RedisQueueClient(opts);
    await c.reader.start();
    const grace = opts.unservedGraceMs ?? DEFAULT_UNSERVED_GRACE_MS;
    if (!opts.allowUnservedModels) c.strandTimer = setInterval(() => void c.failStranded(), Math.max(100, Math.min(5000, grace / 4)));
    c.strandTimer?.unref();
    return c;
  }

  private queue(model: string): Queue<QueuedJob, QueuedJobResult> {
    let q = this.bullQueues.get(model);
    if (!q) {
      q = new Queue<QueuedJob, QueuedJobResult>(this.keys.queueName(model), { connection: this.bullRedis, prefix: this.keys.prefix });
      q.on('error', (err) => this.log.warn({ err: err.message, model }, 'queue connection error'));
      this.bullQueues.set(model, q);
    }
    return q;
  }

  // ---- producing --------------------------------------------------------------------------------------------------

  async enqueue(input: GenerationRequest, options: EnqueueOptions = {}): Promise<EnqueueReceipt> {
    const request = await this.portableImages(generationRequestSchema.parse(input));
    const model = request.model;
    if (!this.opts.allowUnservedModels && !(await this.models()).includes(model)) {
      this.metrics.rejected.inc({ reason: 'model_not_loaded' });
      const served = await this.models();
      throw new ModelNotLoadedError(
        `Model "${model}" is not loaded on any engine worker; an admin can load it.` +
          (served.length > 0 ? ` Available now: ${served.join(', ')}.` : ' No engine worker is running.'),
      );
    }
    const jobId = randomUUID();
    const userId = request.origin.userId;
    const priority = options.priority ?? 0;
    // One round trip: the slot and the stored request, written together (or neither when the user is at the cap).
    const rank = await this.slots.admit(userId, jobId, priority > 0, this.store.requestRecord(jobId, request));
    if (rank === null) {
      this.metrics.rejected.inc({ reason: 'user_cap' });
      const n = this.slots.limit;
      throw new UserCapError(`You already have ${n} job${n === 1 ? '' : 's'} queued or running; wait for one to finish.`);
    }
    // Known before the add: the job can start, and even finish, before add() returns.
    const mine: MyJob = { model, at: Date.now(), position: null };
    this.mine.set(jobId, mine);
    this.sweepMine();
    try {
      await this.queue(model).add('generate', { request }, {
        jobId,
        priority: bullPriority(rank, priority),
        attempts: this.retry.attempts,
        backoff: { type: 'exponential', delay: this.retry.backoffMs },
        // Results live in the result store; BullMQ's copies are only kept for inspection.
        removeOnComplete: { age: 3600, count: 10_000 },
        removeOnFail: { age: 24 * 3600, count: 10_000 },
      });
    } catch (e) {
      this.mine.delete(jobId);
      await this.slots.release(userId, jobId);
      throw e;
    }
    this.metrics.enqueued.inc({ model });
    const position = (await positionOf(this.redis, this.keys, model, jobId)) ?? 1;
    mine.position = { value: position, at: Date.now() };
    this.log.info({ jobId, model, userId, position, rank, priority }, 'job enqueued');
    return { jobId, position };
  }

  /** Image references an engine on another machine can read: file paths and inline bytes move into Redis. */
  private async portableImages(r: GenerationRequest): Promise<GenerationRequest> {
    const fix = async (ref: ImageRef | null): Promise<ImageRef | null> => {
      if (!ref || ref.kind === 'redis') return ref;
      const bytes = ref.kind === 'file' ? await readFile(ref.path) : Buffer.from(ref.base64, 'base64');
      return this.store.putInput(new Uint8Array(bytes));
    };
    return {
      ...r,
      initImage: await fix(r.initImage),
      maskImage: await fix(r.maskImage),
      depthImage: await fix(r.depthImage),
      controlImage: await fix(r.controlImage),
      controls: await Promise.all(r.controls.map(async (c) => ({ ...c, image: (await fix(c.image))! }))),
    };
  }

  // ---- following a job --------------------------------------------------------------------------------------------

  subscribe(jobId: string, listener: (u: JobUpdate) => void): () => void {
    let sub = this.subs.get(jobId);
    if (!sub) {
      const m = this.mine.get(jobId);
      sub = { listeners: new Set(), phase: 'queued', lastPosition: null, model: m?.model ?? null, enqueuedAt: m?.at ?? null };
      this.subs.set(jobId, sub);
    }
    // Each listener sees at most one terminal update, whatever arrives twice.
    let finished = false;
    const once = (u: JobUpdate) => {
      if (finished) return;
      if (isTerminal(u)) finished = true;
      listener(u);
    };
    const isNew = sub.listeners.size === 0;
    sub.listeners.add(once);
    const unsubscribe = () => {
      const s = this.subs.get(jobId);
      if (!s) return;
      s.listeners.delete(once);
      if (s.listeners.size === 0) this.subs.delete(jobId);
    };
    const m = this.mine.get(jobId);
    if (isNew && m) {
      if (m.started) this.dispatch(m.started);
      if (m.progress) this.dispatch(m.progress);
    }
    const terminal = m?.terminal;
    if (terminal) {
      // After subscribe() returns: a listener may call the unsubscribe function it is given.
      queueMicrotask(() => this.dispatch(terminal));
      return unsubscribe;
    }
    this.ensurePolling();
    // A job this client has just enqueued: its place in line is known, and its updates (including a terminal one
    // that beat the subscriber) are held in `mine`, so no read is needed. Anything else asks Redis.
    if (m?.position && sub.phase === 'queued' && Date.now() - m.position.at < FRESH_POSITION_MS) {
      void this.emitQueued(jobId, m.position.value, false);
    } else {
      void this.catchUp(jobId);
    }
    return unsubscribe;
  }

  private dispatch(u: JobUpdate): void {
    const m = this.mine.get(u.jobId);
    const sub = this.subs.get(u.jobId);
    if (m) {
      if (isTerminal(u)) this.onTerminal(u, sub !== undefined);
      else if (u.type === 'started') m.started = u;
      else if (u.type === 'progress') m.progress = u;
    }
    if (!sub || sub.phase === 'done') return;
    if (isTerminal(u)) sub.phase = 'done';
    else if (u.type === 'started' || u.type === 'progress') sub.phase = 'running';
    for (const l of [...sub.listeners]) {
      try {
        l(u);
      } catch (e) {
        this.log.error({ jobId: u.jobId, err: (e as Error).message }, 'job update listener threw');
      }
    }
    if (sub.phase === 'done') this.subs.delete(u.jobId);
  }

  /** First terminal update of a job this client enqueued: metrics, and kept for a subscriber still to come. */
  private onTerminal(u: JobUpdate, subscribed: boolean): void {
    const m = this.mine.get(u.jobId);
    if (!m || m.terminal) {
      if (subscribed) this.mine.delete(u.jobId);
      return;
    }
    this.metrics.endToEnd.observe({ outcome: u.type }, (Date.now() - m.at) / 1000);
    if (u.type === 'failed') this.metrics.failures.inc({ reason: failureReason(u.reason) });
    if (subscribed) this.mine.delete(u.jobId);
    else {
      m.terminal = u;
      m.at = Date.now();
    }
  }

  /** Drops terminal updates nobody subscribed to within a while (the `done` record still has them). */
  private sweepMine(): void {
    const now = Date.now();
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    for (const [id, m] of this.mine) if (m.terminal && now - m.at > KEEP_TERMINAL_MS) this.mine.delete(id);
  }

  /** A new subscriber: replay a terminal update already recorded, or tell it its place in line. One round trip. */
  private async catchUp(jobId: string): Promise<void> {
    try {
      const sub = this.subs.get(jobId);
      if (!sub) return;
      sub.model ??= this.mine.get(jobId)?.model ?? (await this.store.getRequest(jobId))?.request.model ?? null;
      const p = this.redis.pipeline().get(this.keys.done(jobId));
      if (sub.model) addPositionCommands(p, this.keys, sub.model, jobId);
      const res = (await p.exec()) ?? [];
      const done = res[0]?.[1] as string | null | undefined;
      if (done) return this.dispatch(decodeUpdate(done));
      const position = sub.model ? positionFrom(res, 1) : null;
      if (position !== null) await this.emitQueued(jobId, position, false);
    } catch (e) {
      this.log.warn({ jobId, err: (e as Error).message }, 'could not read job state');
    }
  }

  private async emitQueued(jobId: string, position: number, onlyIfChanged: boolean): Promise<void> {
    const sub = this.subs.get(jobId);
    if (!sub || sub.phase !== 'queued' || !sub.model || (onlyIfChanged && sub.lastPosition === position)) return;
    sub.lastPosition = position;
    const etaMs = await this.eta(sub.model, position);
    // The job may have started while the estimate was computed: never send 'queued' after 'started'.
    if (sub.phase === 'queued') this.dispatch({ type: 'queued', jobId, position, etaMs });
  }

  /** Place × last run time ÷ workers holding the model; null until a run time is known. */
  private async eta(model: string, position: number): Promise<number | null> {
    let run = this.runMs.get(model);
    if (!run || Date.now() - run.at > 1000) {
      run = { at: Date.now(), ms: Number(await this.redis.hget(this.keys.runStats, model)) || 0 };
      this.runMs.set(model, run);
    }
    if (!run.ms) return null;
    const workers = (await this.cachedWorkers()).filter((w) => w.models.includes(model) && !w.paused).length;
    return Math.round((position * run.ms) / Math.max(1, workers));
  }

  private ensurePolling(): void {
    if (this.pollTimer) return;
    this.pollTimer = setInterval(() => {
      if (this.subs.size === 0) {
        clearInterval(this.pollTimer!);
        this.pollTimer = null;
        return;
      }
      void this.poll();
    }, this.opts.pollMs ?? 2000);
  }

  /**
   * Terminal records for every open subscription (covers updates lost to a trimmed stream or a dropped connection),
   * then fresh positions for queued ones: a constant number of reads per model, however many jobs wait.
   */
  private async poll(): Promise<void> {
    const ids = [...this.subs.keys()];
    if (ids.length === 0) return;
    try {
      const done = await this.redis.mget(ids.map((id) => this.keys.done(id)));
      ids.forEach((id, i) => {
        const d = done[i];
        if (d) this.dispatch(decodeUpdate(d));
      });
      const byModel = new Map<string, string[]>();
      for (const [id, sub] of this.subs) {
        if (sub.phase !== 'queued' || !sub.model) continue;
        byModel.set(sub.model, [...(byModel.get(sub.model) ?? []), id]);
      }
      for (const [model, jobIds] of byModel) {
        const positions = await positionsOf(this.redis, this.keys, model, jobIds);
        await Promise.all([...positions].map(([id, pos]) => this.emitQueued(id, pos, true)));
      }
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'job status poll failed');
    }
  }

  /**
   * Jobs left without any worker able to run them: for every model this client has enqueued to or follows, once no
   * live worker has held it for the grace period, its waiting jobs (and running ones whose worker's lock is gone)
   * are removed and failed. Removal fails while a worker holds a job's lock, and the terminal record is written
   * once, so several bots doing this at once still tell each user once.
   */
  private async failStranded(): Promise<void> {
    try {
      const models = new Set([...this.bullQueues.keys(), ...[...this.subs.values()].flatMap((s) => (s.model ? [s.model] : []))]);
      if (models.size === 0) return;
      const served = new Set(await this.models());
      const now = Date.now();
      const grace = this.opts.unservedGraceMs ?? DEFAULT_UNSERVED_GRACE_MS;
      for (const model of models) {
        if (served.has(model)) {
          this.unservedSince.delete(model);
          continue;
        }
        const since = this.unservedSince.get(model) ?? now;
        this.unservedSince.set(model, since);
        if (now - since >= grace) await this.failJobsOf(model);
      }
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'stranded-job check failed');
    }
  }

  private async failJobsOf(model: string): Promise<void> {
    const q = this.queue(model);
    const jobs = await q.getJobs(['wait', 'prioritized', 'delayed', 'active']);
    const reason = `no engine worker holds model ${model} any more; an admin can load it`;
    for (const job of jobs) {
      if (!job?.id) continue;
      try {
        await job.remove();
      } catch {
        continue; // a worker still holds it: not stranded
      }
      const userId = job.data.request.origin?.userId ?? 'unknown';
      if (await this.events.recordTerminal({ type: 'failed', jobId: job.id, reason }, userId)) {
        this.log.warn({ jobId: job.id, model }, 'failed a job no worker can run');
      }
    }
  }

  async positionOf(jobId: string): Promise<number | null> {
    const model = this.mine.get(jobId)?.model ?? (await this.store.getRequest(jobId))?.request.model;
    return model ? positionOf(this.redis, this.keys, model, jobId) : null;
  }

  // ---- stored data ------------------------------------------------------------------------------------------------

  async getRequest(jobId: string): Promise<GenerationRequest | null> {
    return (await this.store.getRequest(jobId))?.request ?? null;
  }

  /** From the job's `done` record; null unless it completed and every image is still stored. */
  async getResult(jobId: string): Promise<StoredImage[] | null> {
    const done = await this.events.terminalOf(jobId);
    if (done?.type !== 'completed') return null;
    if (done.images.length === 0) return [];
    const present = await this.redis.exists(...done.images.map((i) => i.key));
    return present === done.images.length ? done.images : null;
  }

  getImage(key: string): Promise<Uint8Array | null> {
    return this.store.getBytes(key);
  }

  putInput(bytes: Uint8Array): Promise<ImageRef> {
    return this.store.putInput(bytes);
  }

  // ---- cancel -----------------------------------------------------------------------------------------------------

  async cancel(jobId: string, by: { userId: string; isAdmin: boolean }): Promise<'cancelled' | 'not-found' | 'forbidden' | 'finished'> {
    const rec = await this.store.getRequest(jobId);
    if (!rec) return 'not-found';
    const owner = rec.request.origin.userId;
    if (!by.isAdmin && owner !== by.userId) return 'forbidden';
    if (await this.events.terminalOf(jobId)) return 'finished';
    const job = await this.queue(rec.request.model).getJob(jobId);
    let removed = false;
    if (job) {
      try {
        // Fails while a worker holds the job's lock: then it is running and the worker must stop it.
        await job.remove();
        removed = true;
      } catch {
        removed = false;
      }
    }
    if (removed) {
      await this.events.recordTerminal({ type: 'cancelled', jobId, by: by.userId }, owner);
      this.log.info({ jobId, by: by.userId }, 'queued job cancelled');
      return 'cancelled';
    }
    if (await this.events.terminalOf(jobId)) return 'finished';
    await this.redis.set(this.keys.cancel(jobId), by.userId, 'PX', 3600_000);
    await sendControl(this.redis, this.keys, { cmd: 'cancel', jobId, by: by.userId });
    this.log.info({ jobId, by: by.userId }, 'running job asked to stop');
    return 'cancelled';
  }

  // ---- workers and admin ------------------------------------------------------------------------------------------

  async workers(): Promise<WorkerInfo[]> {
    return (await this.cachedWorkers(0)).map(({ available: _a, defaultModel: _d, ...info }) => info);
  }

  /** Heartbeats with the extra fields (models a worker could load, its default model). */
  async workerDetails(): Promise<WorkerHeartbeat[]> {
    return this.cachedWorkers(0);
  }

  private async cachedWorkers(maxAgeMs = 1000): Promise<WorkerHeartbeat[]> {
    if (this.workerCache && Date.now() - this.workerCache.at <= maxAgeMs) return this.workerCache.list;
    const list = await this.registry.list();
    this.workerCache = { at: Date.now(), list };
    return list;
  }

  async models(): Promise<string[]> {
    const set = new Set<string>();
    for (const w of await this.cachedWorkers()) for (const m of w.models) set.add(m);
    return [...set].sort();
  }

  /** Admin command to workers (load / unload / pause / resume / drain); `worker` targets one. */
  control(msg: QueueControl): Promise<void> {
    this.workerCache = null;
    return sendControl(this.redis, this.keys, msg);
  }

  setDefaultModel(scope: DefaultModelScope, model: string | null): Promise<void> {
    return this.defaults.set(scope, model);
  }

  getDefaultModel(scope: DefaultModelScope): Promise<string | null> {
    return this.defaults.get(scope);
  }

  listDefaultModels(): Promise<{ scope: DefaultModelScope; model: string }[]> {
    return this.defaults.list();
  }

  async depths(): Promise<Record<string, number>> {
    return queueDepths(this.redis, this.keys, await this.models());
  }

  /** The model to use when a request names none: channel, server/workspace, global setting, then a worker's default. */
  async defaultModelFor(origin: Pick<Origin, 'guildId' | 'channelId'>): Promise<string | null> {
    const set = await this.defaults.resolve(origin);
    if (set) return set;
    const workers = await this.cachedWorkers();
    return workers.find((w) => w.defaultModel && w.models.includes(w.defaultModel))?.defaultModel ?? workers[0]?.models[0] ?? null;
  }

  async health(): Promise<QueueHealth> {
    const ok = this.redis.status === 'ready';
    return { ok, redis: this.redis.status, workers: ok ? (await this.cachedWorkers()).length : 0 };
  }

  async close(): Promise<void> {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
    if (this.strandTimer) clearInterval(this.strandTimer);
    this.strandTimer = null;
    await this.reader.stop();
    await Promise.all([...this.bullQueues.values()].map((q) => q.close()));
    await this.redis.quit().catch(() => {});
    await this.bullRedis.quit().catch(() => {});
  }
}

function failureReason(reason: string): string {
  if (reason.startsWith('the engine failed')) return 'engine_error';
  if (reason.includes('longer than')) return 'timeout';
  if (reason.startsWith('the job could not be run')) return 'stalled';
  return 'bad_request';
}
