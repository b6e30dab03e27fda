/**
 * Worker-thread side of NoiseStream: continues the job's generators from their saved states and keeps the next
 * per-step noise draws ready in a shared ring, so the torch-exact normal sampling (about 1 ms per 16k values) runs
 * beside the UNet instead of between its runs.
 */
import { parentPort } from 'node:worker_threads';
import { TorchGenerator, type GeneratorState } from './torch-rng.js';
import { CTRL, type NoiseJob } from './noise-ring.js';

function fill(job: NoiseJob): void {
  const ctrl = new Int32Array(job.control);
  const gens = job.states.map((s: GeneratorState) => TorchGenerator.fromState(s));
  const per = job.numel / gens.length;
  try {
    for (let k = 0; ; k++) {
      // Wait for a free slot: slot k % slots is free once the consumer has released draw k - slots.
      for (;;) {
        if (Atomics.load(ctrl, CTRL.stop)) return;
        const released = Atomics.load(ctrl, CTRL.released);
        if (k - released < job.slots) break;
        Atomics.wait(ctrl, CTRL.released, released, 1000);
      }
      const slot = new Float32Array(job.ring, (k % job.slots) * job.numel * 4, job.numel);
      gens.forEach((g, i) => slot.set(g.randn([1, ...job.perImage]), i * per));
      Atomics.store(ctrl, CTRL.produced, k + 1);
      Atomics.notify(ctrl, CTRL.produced);
    }
  } catch {
    Atomics.store(ctrl, CTRL.failed, 1);
    Atomics.notify(ctrl, CTRL.produced);
  }
}

parentPort!.on('message', (job: NoiseJob) => {
  fill(job);
  parentPort!.postMessage('done');
});
parentPort!.postMessage('ready');
