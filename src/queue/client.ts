/**
 * What the bot core sees of the queue: enqueue a request, follow its updates, fetch result images, cancel, and the
 * admin controls. The BullMQ implementation lives next to this file; the bot core depends only on this interface.
 */
import type { GenerationRequest, ImageRef, JobTimings } from './job.js';

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
