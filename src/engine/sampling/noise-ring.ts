/** The shared layout between NoiseStream and its worker. */
import type { GeneratorState } from './torch-rng.js';

/** Int32 slots of the control block. */
export const CTRL = { produced: 0, released: 1, stop: 2, failed: 3 } as const;

export interface NoiseJob {
  states: GeneratorState[];
  perImage: number[];
  /** Values per draw (all images). */
  numel: number;
  slots: number;
  ring: SharedArrayBuffer;
  control: SharedArrayBuffer;
}

/**
 * The producer side of a ring, run in a worker: item k goes into slot k % slots once the consumer has released item
 * k - slots; `count` items (Infinity: until told to stop). A throw is flagged for the consumer instead of escaping.
 */
export function produceIntoRing(control: SharedArrayBuffer, slots: number, count: number, write: (k: number) => void): void {
  const ctrl = new Int32Array(control);
  try {
    for (let k = 0; k < count; k++) {
      for (;;) {
        if (Atomics.load(ctrl, CTRL.stop)) return;
        const released = Atomics.load(ctrl, CTRL.released);
        if (k - released < slots) break;
        Atomics.wait(ctrl, CTRL.released, released, 1000);
      }
      write(k);
      Atomics.store(ctrl, CTRL.produced, k + 1);
      Atomics.notify(ctrl, CTRL.produced);
    }
  } catch {
    Atomics.store(ctrl, CTRL.failed, 1);
    Atomics.notify(ctrl, CTRL.produced);
  }
}
