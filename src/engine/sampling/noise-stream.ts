/**
 * The per-step noise of stochastic samplers (Euler a, DPM++ SDE, DDPM, LCM, and Euler, whose diffusers step draws
 * noise even when it does not use it). Draws are exactly the ones diffusers makes — image i from its own generator,
 * [1, C, h, w] per draw — but for large latents they are computed ahead in a worker thread, off the denoising
 * loop's critical path: on a GPU machine a UNet step is ~20 ms while a 2×64×64×4 draw costs ~2 ms of CPU.
 *
 * The worker starts before the loop when the sampler draws on every step (`prepare(draws)`), else at the first
 * draw (deterministic samplers never pay for it), and continues the generators from their state at that moment;
 * the main-thread generators are not advanced past it, so nothing may draw from them during or after the loop.
 */
import type { Worker } from 'node:worker_threads';
import type { NoiseSampler } from './scheduler.js';
import type { TorchGenerator } from './torch-rng.js';
import { awaitItem, CONTROL_BYTES, releaseBefore, ringSlots, stopProducer, type NoiseJob } from './noise-ring.js';
import { acquireWorker, releaseWhenDone, releaseWorker } from './worker-pool.js';

/** Below this many values per draw a worker costs more than it saves. */
export const WORKER_MIN_NUMEL = 16384;
const SLOTS = 3;
const WAIT_LIMIT_MS = 60_000;
const NOISE_WORKER = 'noise-worker';

export interface NoiseStream extends NoiseSampler {
  /**
   * Gets a worker ready before the loop (its module loading needs this thread's event loop). `draws`: how many draws
   * the loop will make, when the sampler draws on every step: the worker then starts drawing at once, from the
   * generators' current state, into a ring that holds them all (memory permitting). Without it the worker starts
   * at the first draw, which is made inline.
   */
  prepare(draws?: number): Promise<void>;
  close(): void;
}

export function noiseStream(generators: readonly TorchGenerator[], perImage: readonly number[], minNumel = WORKER_MIN_NUMEL): NoiseStream {
  const numel = generators.length * perImage.reduce((a, b) => a * b, 1);
  const inline = (): Float32Array => {
    const out = new Float32Array(numel);
    const per = numel / generators.length;
    generators.forEach((g, i) => out.set(g.randn([1, ...perImage]), i * per));
    return out;
  };
  let ring: { job: NoiseJob; ctrl: Int32Array; worker: Worker; next: number } | null = null;
  let worker: Worker | null = null;

  /** Hands the generators' current state to the worker, which draws from there on. */
  const start = (w: Worker, draws: number): void => {
    const slots = ringSlots(draws, numel, SLOTS);
    const job: NoiseJob = {
      states: generators.map((g) => g.getState()), perImage: [...perImage], numel, slots,
      ring: new SharedArrayBuffer(slots * numel * 4), control: new SharedArrayBuffer(CONTROL_BYTES),
    };
    w.postMessage(job);
    ring = { job, ctrl: new Int32Array(job.control), worker: w, next: 0 };
  };

  const draw = (() => {
    if (numel < minNumel || (!ring && !worker)) return inline();
    if (!ring) {
      // First draw inline; the worker continues from here.
      const first = inline();
      start(worker!, 0);
      return first;
    }
    const { ctrl, job } = ring;
    const k = ring.next++;
    // Release draw k - 1: the sampler is done with it once it asks for the next one.
    releaseBefore(ctrl, k);
    const state = awaitItem(ctrl, k, performance.now() + WAIT_LIMIT_MS);
    if (state === 'failed') throw new Error('noise worker failed');
    if (state === 'timeout') throw new Error('noise worker stopped answering');
    return new Float32Array(job.ring, (k % job.slots) * numel * 4, numel);
  }) as NoiseStream;

  draw.prepare = async (draws = 0) => {
    if (numel >= minNumel && !worker) worker = await acquireWorker(NOISE_WORKER);
    if (draws > 0 && worker && !ring) start(worker, draws);
  };
  draw.close = () => {
    const w = worker;
    worker = null;
    if (!w) return;
    if (!ring) {
      releaseWorker(NOISE_WORKER, w);
      return;
    }
    stopProducer(ring.ctrl);
    ring = null;
    releaseWhenDone(NOISE_WORKER, w, new Promise((resolve) => w.once('message', resolve)));
  };
  return draw;
}
