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
