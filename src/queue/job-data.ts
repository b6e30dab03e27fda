/** What a BullMQ job carries, and the retry policy the producer attaches to it. */
import type { GenerationRequest } from './job.js';

export interface QueuedJob {
  request: GenerationRequest;
}

/** The job's return value in BullMQ: keys only — image bytes live in the result store. */
export interface QueuedJobResult {
  outcome: 'completed' | 'cancelled' | 'duplicate';
  images: string[];
}

export interface RetryPolicy {
  /** Runs in all (first + retries) for transient engine failures. Bad requests are never retried. */
  attempts: number;
  /** First retry delay; doubles each time. */
  backoffMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, backoffMs: 1000 };
