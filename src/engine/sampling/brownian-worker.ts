/**
 * Worker-thread side of BrownianNoise: answers a DPM++ SDE run's Brownian queries in order with its own trees
 * (its share of the batch's per-image trees) and keeps the next answers ready in a shared ring.
 */
import { parentPort } from 'node:worker_threads';
import { BrownianTreeNoiseSampler } from './brownian-tree.js';
import { produceIntoRing } from './noise-ring.js';
import type { BrownianJob } from './brownian-stream.js';

function fill(job: BrownianJob): void {
  const values = job.perTree * job.seeds.length;
  let sampler: BrownianTreeNoiseSampler | undefined;
  // Query k is the pair (queries[2k], queries[2k + 1]); the trees are built inside the producer so a failure is flagged.
  produceIntoRing(job.control, job.slots, Math.ceil(job.queries.length / 2), (k) => {
    sampler ??= new BrownianTreeNoiseSampler(job.sigmaMin, job.sigmaMax, values, job.seeds.map((s) => BigInt(s)));
    const part = new Float32Array(job.ring, ((k % job.slots) * job.numel + job.offset) * 4, values);
    part.set(sampler.sample(job.queries[2 * k]!, job.queries[2 * k + 1]!));
  });
}

parentPort!.on('message', (job: BrownianJob) => {
  fill(job);
  parentPort!.postMessage('done');
});
parentPort!.postMessage('ready');
