/**
 * The no-op engine of `bench:queue`: every job returns one fixed 1×1 PNG at once, so the figures measure the queue
 * (Redis round trips, BullMQ, bookkeeping, update stream), not image work. Loaded by `sdbot engine --in-process
 * --engine-module bench/noop-engine.ts`.
 */
import { tinyPng } from '../test/helpers/fake-engine.js';
import type { Engine, ModelEntry } from '../src/engine/engine.js';
import type { GenerationRequest, GenerationResult } from '../src/queue/job.js';

const PNG = tinyPng('noop');
const TIMINGS = { loadMs: 0, textMs: 0, denoiseMs: 0, unetMs: 0, decodeMs: 0, totalMs: 0 };

class NoopEngine implements Engine {
  readonly device = 'noop';
  private readonly models = new Set<string>();

  async runJob(request: GenerationRequest): Promise<GenerationResult> {
    return { images: [{ seed: request.seed, png: PNG, width: 1, height: 1 }], notes: [], timings: TIMINGS };
  }
  async loadModel(entry: ModelEntry): Promise<void> {
    this.models.add(entry.id);
  }
  async unloadModel(id: string): Promise<void> {
    this.models.delete(id);
  }
  loadedModels(): string[] {
    return [...this.models];
  }
  async close(): Promise<void> {}
}

export async function createEngine(): Promise<Engine> {
  return new NoopEngine();
}
