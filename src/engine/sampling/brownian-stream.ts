/**
 * DPM++ SDE's Brownian noise, computed ahead in worker threads. Every query the sampler will make is known from
 * the schedule before the loop starts, and a Brownian tree gives the same increments whatever the order or the
 * cache, so workers can walk the query list with their own trees (one group of per-image trees each) while the
 * model runs, and hand over exactly the values the in-thread tree would. A query that is not the next one on the
 * list (or a worker that fails) switches the run to the in-thread tree for good.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { BrownianTreeNoiseSampler } from './brownian-tree.js';
import { WORKER_MIN_NUMEL } from './noise-stream.js';
import { acquireWorker, releaseWhenDone } from './worker-pool.js';
import { awaitItem, CONTROL_BYTES, releaseBefore, ringSlots, stopProducer } from './noise-ring.js';

const BROWNIAN_WORKER = 'brownian-worker';
/** Queries a worker may run ahead of the sampler at least (the ring holds all of a run's when they fit). */
const MIN_SLOTS = 4;
/**
 * Per-image trees are independent, so a batch splits across workers: one per core beside the loop's thread (which
 * is busy while a GPU run synchronises), at least two (a thread that waits on the GPU leaves its core free).
 */
const MAX_WORKERS = Math.max(2, availableParallelism() - 1);
const WAIT_LIMIT_MS = 60_000;

/** One worker's share: its trees' part of every query, written into the shared ring. */
export interface BrownianJob {
  sigmaMin: number;
  sigmaMax: number;
  /** this worker's tree seeds, in decimal */
  seeds: string[];
  /** values per tree */
  perTree: number;
  /** where this worker's trees start within a slot, in values */
  offset: number;
  /** values per slot (the whole batch) */
  numel: number;
  /** [sigmaFrom, sigmaTo] of each query, flat */
  queries: number[];
  slots: number;
  ring: SharedArrayBuffer;
  control: SharedArrayBuffer;
}

interface Running {
  worker: Worker;
  ctrl: Int32Array;
  finished: Promise<unknown>;
}

export class BrownianNoise {
  private inline: BrownianTreeNoiseSampler | null = null;
  private running: Running[] = [];
  private ring: SharedArrayBuffer | null = null;
  private next = 0;
  /** queries answered from the workers (for tests and benchmarks) */
  prefetched = 0;

  /** Arguments as BrownianTreeNoiseSampler's; `queries`: the sample() calls to expect, in order. */
  constructor(
    private readonly sigmaMin: number,
    private readonly sigmaMax: number,
    readonly numel: number,
    private readonly seeds: bigint | readonly bigint[],
    private readonly queries: readonly (readonly [number, number])[] = [],
    private readonly minNumel = WORKER_MIN_NUMEL,
  ) {}

  /** Starts the workers (below minNumel, or without queries, everything runs in this thread). */
  async prepare(): Promise<void> {
    const seeds = typeof this.seeds === 'bigint' ? [this.seeds] : [...this.seeds];
    if (this.numel < this.minNumel || this.queries.length === 0 || this.ring || seeds.length === 0 || this.numel % seeds.length !== 0) return;
    const perTree = this.numel / seeds.length;
    const groups = Math.min(MAX_WORKERS, seeds.length);
    const slots = ringSlots(this.queries.length, this.numel, MIN_SLOTS);
    const ring = new SharedArrayBuffer(slots * this.numel * 4);
    const queries = this.queries.flat();
    try {
      for (let g = 0; g < groups; g++) {
        const first = Math.floor((g * seeds.length) / groups);
        const end = Math.floor(((g + 1) * seeds.length) / groups);
        const worker = await acquireWorker(BROWNIAN_WORKER);
        const job: BrownianJob = {
          sigmaMin: this.sigmaMin, sigmaMax: this.sigmaMax, seeds: seeds.slice(first, end).map(String), perTree,
          offset: first * perTree, numel: this.numel, queries, slots, ring, control: new SharedArrayBuffer(CONTROL_BYTES),
        };
        // the worker says it is done (finished or stopped) before it takes another job
        const finished = new Promise((resolve) => worker.once('message', resolve));
        worker.postMessage(job);
        this.running.push({ worker, ctrl: new Int32Array(job.control), finished });
      }
      this.ring = ring;
    } catch {
      this.close(); // no worker: the in-thread tree answers
    }
  }

  /** BrownianTreeNoiseSampler.sample; a worker's answer stays valid until the next call. */
  sample(sigma: number, sigmaNext: number): Float32Array {
    const k = this.next;
    const q = this.queries[k];
    if (this.ring && q && q[0] === sigma && q[1] === sigmaNext) {
      const slot = this.take(k);
      if (slot) {
        this.next++;
        this.prefetched++;
        return slot;
      }
    }
    this.close();
    this.inline ??= new BrownianTreeNoiseSampler(this.sigmaMin, this.sigmaMax, this.numel, this.seeds);
    return this.inline.sample(sigma, sigmaNext);
  }

  /** Query k from the ring once every worker has written its part; null when one failed or stopped answering. */
  private take(k: number): Float32Array | null {
    const deadline = performance.now() + WAIT_LIMIT_MS;
    // release query k - 1: the sampler is done with it once it asks for the next one
    for (const { ctrl } of this.running) releaseBefore(ctrl, k);
    for (const { ctrl } of this.running) if (awaitItem(ctrl, k, deadline) !== 'ready') return null;
    const slots = this.ring!.byteLength / (4 * this.numel);
    return new Float32Array(this.ring!, (k % slots) * this.numel * 4, this.numel);
  }

  /** Stops the workers; later queries run in this thread. */
  close(): void {
    for (const { worker, ctrl, finished } of this.running) {
      stopProducer(ctrl);
      releaseWhenDone(BROWNIAN_WORKER, worker, finished);
    }
    this.running = [];
    this.ring = null;
  }
}
