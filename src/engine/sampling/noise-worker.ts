/**
 * Worker-thread side of NoiseStream: continues the job's generators from their saved states and keeps the next
 * per-step noise draws ready in a shared ring, so the torch-exact normal sampling (about 1 ms per 16k values) runs
 * beside the UNet instead of between its runs.
 */
import { parentPort } from 'node:worker_threads';
import { TorchGenerator, type GeneratorState } from './torch-rng.js';
import { produceIntoRing, type NoiseJob } from './noise-ring.js';

function fill(job: NoiseJob): void {
  const gens = job.states.map((s: GeneratorState) => TorchGenerator.fromState(s));
  const per = job.numel / gens.length;
  produceIntoRing(job.control, job.slots, Infinity, (k) => {
    const slot = new Float32Array(job.ring, (k % job.slots) * job.numel * 4, job.numel);
    gens.forEach((g, i) => slot.set(g.randn([1, ...job.perImage]), i * per));
  });
}

parentPort!.on('message', (job: NoiseJob) => {
  fill(job);
  parentPort!.postMessage('done');
});
parentPort!.postMessage('ready');
