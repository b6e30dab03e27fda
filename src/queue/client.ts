/**
 * What the bot core sees of the queue: enqueue a request, follow its updates, fetch result images, cancel, and the
 * admin controls. The BullMQ implementation lives next to this file; the bot core depends only on this interface.
 */
import type { GenerationRequest, ImageRef, JobTimings, Origin } from './job.js';

export interface StoredImage {
  /** Result-store key of the PNG bytes (Redis, with a TTL). */
  key: string;
  seed: string;
  width: number;
  height: number;
}

export type JobUpdate =
  | { type: 'queued'; jobId: string; position: number; etaMs: number | null }
  | { type: 'started'; jobId: string; worker: string }
  | { type: 'progress'; jobId: string; step: number; total: number; preview?: Uint8Array }
  | { type: 'completed'; jobId: string; images: StoredImage[]; notes: string[]; timings: JobTimings }
  | { type: 'failed'; jobId: string; reason: string }
  | { type: 'cancelled'; jobId: string; by: string };

export interface EnqueueOptions {
  /** Higher runs first (admins, configured roles). */
  priority?: number;
}

export interface EnqueueReceipt {
  jobId: string;
  /** 1-based place in line for this model's queue at enqueue time. */
  position: number;
}

export interface WorkerInfo {
  id: string;
  host: string;
  device: string;
  models: string[];
  currentJob: string | null;
  stepsPerSecond: number | null;
  paused: boolean;
  lastSeen: number;
}

export interface QueueClient {
  enqueue(request: GenerationRequest, options?: EnqueueOptions): Promise<EnqueueReceipt>;
  /** Updates for one job, delivered to this process; returns an unsubscribe function. */
  subscribe(jobId: string, listener: (u: JobUpdate) => void): () => void;
  /** The stored request of a job (kept for days so buttons under old results still work). */
  getRequest(jobId: string): Promise<GenerationRequest | null>;
  getImage(key: string): Promise<Uint8Array | null>;
  /** Store an uploaded attachment so an engine on another machine can read it. */
  putInput(bytes: Uint8Array): Promise<ImageRef>;
  cancel(jobId: string, by: { userId: string; isAdmin: boolean }): Promise<'cancelled' | 'not-found' | 'forbidden' | 'finished'>;
  workers(): Promise<WorkerInfo[]>;
  /** Model ids some live worker holds. */
  models(): Promise<string[]>;
  close(): Promise<void>;
}

/** Admin commands to the engine workers; `worker` targets one worker by id, else all that apply. */
export type QueueControl =
  /** Load a model: by id from the workers' models files, or from `dir`. */
  | { cmd: 'load'; model: string; dir?: string; worker?: string }
  | { cmd: 'unload'; model: string; worker?: string }
  /** Stop taking new jobs (the running one finishes). */
  | { cmd: 'pause'; worker?: string }
  | { cmd: 'resume'; worker?: string }
  /** Finish the running job, take no more, and exit. */
  | { cmd: 'drain'; worker?: string };

/** Where a default model applies: everywhere, one server / workspace, or one channel. */
export type DefaultModelScope = { kind: 'global' } | { kind: 'guild'; id: string } | { kind: 'channel'; id: string };

/** A worker as it heartbeats, with the models it could load and its own default. */
export interface WorkerDetails extends WorkerInfo {
  /** Models the worker can load on request (its models file), loaded or not. */
  available: string[];
  defaultModel: string | null;
}

export interface QueueHealth {
  ok: boolean;
  /** Connection state of the queue's Redis client ("ready" when healthy). */
  redis: string;
  /** Live workers. */
  workers: number;
}

/**
 * What admins and result reuse need beyond `QueueClient`. The bot core takes one (RedisQueueClient implements both;
 * so does the in-memory test queue); one store of default models serves every bot process and platform.
 */
export interface QueueAdmin {
  control(msg: QueueControl): Promise<void>;
  /** `model` null clears the setting for that scope. */
  setDefaultModel(scope: DefaultModelScope, model: string | null): Promise<void>;
  getDefaultModel(scope: DefaultModelScope): Promise<string | null>;
  /** Every scope that has a default model set. */
  listDefaultModels(): Promise<{ scope: DefaultModelScope; model: string }[]>;
  /** The model for a request that names none: channel, server / workspace, global setting, then a worker's default. */
  defaultModelFor(origin: Pick<Origin, 'guildId' | 'channelId'>): Promise<string | null>;
  /** Jobs waiting per model queue (waiting, prioritized and delayed for retry), for every model a live worker holds. */
  depths(): Promise<Record<string, number>>;
  workerDetails(): Promise<WorkerDetails[]>;
  health(): Promise<QueueHealth>;
  /** The stored result images of a finished job while they last (their TTL); null when unknown, unfinished or expired. */
  getResult(jobId: string): Promise<StoredImage[] | null>;
}

/** A queue with its admin side, as the bot core takes it. */
export type AdminQueueClient = QueueClient & QueueAdmin;
