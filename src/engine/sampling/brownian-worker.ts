/**
 * Worker-thread side of BrownianNoise: answers a DPM++ SDE run's Brownian queries in order with its own trees
 * (its share of the batch's per-image trees) and keeps the next answers ready in a shared ring.
 */
import { parentPort } from 'node:worker_threads';
import { BrownianTreeNoiseSampler } from './brownian-tree.js';
import { CTRL } from './noise-ring.js';
import type { BrownianJob } from './brownian-stream.js';

function fill(job: BrownianJob): void {
  const ctrl = new Int32Array(job.control);
  try {
    const values = job.perTree * job.seeds.length;
    const sampler = new BrownianTreeNoiseSampler(job.sigmaMin, job.sigmaMax, values, job.seeds.map((s) => BigInt(s)));
    for (let k = 0; 2 * k < job.queries.length; k++) {
      // Wait for a free slot: slot k % slots is free once the consumer has released query k - slots.
      for (;;) {
        if (Atomics.load(ctrl, CTRL.stop)) return;
        const released = Atomics.load(ctrl, CTRL.released);
        if (k - released < job.slots) break;
        Atomics.wait(ctrl, CTRL.released, released, 1000);
      }
      const part = new Float32Array(job.ring, ((k % job.slots) * job.numel + job.offset) * 4, values);
      part.set(sampler.sample(job.queries[2 * k]!, job.queries[2 * k + 1]!));
      Atomics.store(ctrl, CTRL.produced, k + 1);
      Atomics.notify(ctrl, CTRL.produced);
    }
  } catch {
    Atomics.store(ctrl, CTRL.failed, 1);
    Atomics.notify(ctrl, CTRL.produced);
  }
}

parentPort!.on('message', (job: BrownianJob) => {
  fill(job);
  parentPort!.postMessage('done');
});
parentPort!.postMessage('ready');
