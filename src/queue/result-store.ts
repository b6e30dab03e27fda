/**
 * Bytes and records that outlive a BullMQ job, each under its own Redis key with its own TTL:
 * - result images (default 1 h; written by the worker with the job's end, see EventPublisher.recordTerminal): never
 *   in the job's return value, so BullMQ's job hashes stay small;
 * - uploaded inputs (attachments) an engine on another machine reads by key;
 * - the request and its origin (default 30 days) so buttons under an old result can build follow-ups.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { generationRequestSchema, type GenerationRequest, type ImageRef } from './job.js';
import type { QueueKeys } from './keys.js';

export const DEFAULT_RESULT_TTL_MS = 60 * 60 * 1000;
export const DEFAULT_REQUEST_TTL_MS = 30 * 24 * 60 * 60 * 1000;
export const DEFAULT_INPUT_TTL_MS = 24 * 60 * 60 * 1000;

export interface StoredRequest {
  request: GenerationRequest;
  enqueuedAt: number;
}

export class ResultStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: QueueKeys,
    readonly ttl = { resultMs: DEFAULT_RESULT_TTL_MS, requestMs: DEFAULT_REQUEST_TTL_MS, inputMs: DEFAULT_INPUT_TTL_MS },
  ) {}

  async getBytes(key: string): Promise<Uint8Array | null> {
    const b = await this.redis.getBuffer(key);
    return b ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : null;
  }

  async putInput(bytes: Uint8Array): Promise<ImageRef> {
    const key = this.keys.input(randomUUID());
    await this.redis.set(key, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), 'PX', this.ttl.inputMs);
    return { kind: 'redis', key };
  }

  async putRequest(jobId: string, request: GenerationRequest): Promise<void> {
    const rec = this.requestRecord(jobId, request);
    await this.redis.set(rec.key, rec.value, 'PX', rec.ttlMs);
  }

  /** The stored-request write, for callers that fold it into another script (UserSlots.admit). */
  requestRecord(jobId: string, request: GenerationRequest): { key: string; value: string; ttlMs: number } {
    const rec: StoredRequest = { request, enqueuedAt: Date.now() };
    return { key: this.keys.request(jobId), value: JSON.stringify(rec), ttlMs: this.ttl.requestMs };
  }

  async getRequest(jobId: string): Promise<StoredRequest | null> {
    const s = await this.redis.get(this.keys.request(jobId));
    if (!s) return null;
    const rec = JSON.parse(s) as StoredRequest;
    return { ...rec, request: generationRequestSchema.parse(rec.request) };
  }
}
