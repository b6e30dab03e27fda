/** Small helpers shared by the queue tests: requests, in-process workers on the fake engine, update collectors. */
import type { JobUpdate } from '../../src/queue/client.js';
import { generationRequestSchema, type GenerationRequest, type GenerationRequestInput } from '../../src/queue/job.js';
import type { RedisQueueClient } from '../../src/queue/redis-client.js';
import { EngineWorker, type EngineWorkerOptions } from '../../src/queue/worker.js';
import type { ModelConfigEntry } from '../../src/engine/models-file.js';
import type { TestRedis } from './redis-server.js';
import { createEngine } from './fake-engine.js';

let seed = 1;

export function req(model: string, prompt: string, userId = 'u1', extra: Partial<GenerationRequestInput> = {}): GenerationRequest {
  return generationRequestSchema.parse({ model, prompt, seed: String(seed++), steps: 2, origin: { platform: 'web', userId }, ...extra });
}

export function entry(id: string, load = true): ModelConfigEntry {
  return { id, dir: `/models/${id}`, load };
}

/** An EngineWorker in this process on the fake engine, with short locks and heartbeats for tests. */
export async function inProcessWorker(r: TestRedis, models: ModelConfigEntry[], o: Partial<EngineWorkerOptions> = {}): Promise<EngineWorker> {
  const w = new EngineWorker({
    redisUrl: r.url,
    prefix: r.prefix,
    engine: await createEngine(),
    models,
    lockDurationMs: 2000,
    stalledIntervalMs: 1000,
    heartbeatMs: 200,
    progressIntervalMs: 0,
    ...o,
  });
  await w.start();
  return w;
}

export interface Followed {
  updates: JobUpdate[];
  terminal: Promise<JobUpdate>;
  terminals(): JobUpdate[];
}

export function follow(client: RedisQueueClient, jobId: string): Followed {
  const updates: JobUpdate[] = [];
  let resolve!: (u: JobUpdate) => void;
  const terminal = new Promise<JobUpdate>((r) => (resolve = r));
  client.subscribe(jobId, (u) => {
    updates.push(u);
    if (u.type === 'completed' || u.type === 'failed' || u.type === 'cancelled') resolve(u);
  });
  return {
    updates,
    terminal,
    terminals: () => updates.filter((u) => u.type === 'completed' || u.type === 'failed' || u.type === 'cancelled'),
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
