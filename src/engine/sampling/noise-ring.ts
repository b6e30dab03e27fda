/**
 * The shared ring between a noise consumer (the denoising loop) and a producer worker: item k lives in slot
 * k % slots, the consumer releases items in order, and the producer fills freed slots ahead of it.
 *
 * Waking a sleeping thread (Atomics.notify on a waiter) costs the notifying thread 20–30 µs on a virtual machine — a
 * tenth of the loop's whole per-step budget — so the consumer only wakes the producer when it sleeps and has asked
 * to be woken by now, and a producer with a full ring asks only when the consumer is WAKE_LEAD items from needing
 * the next one (a ring of s slots then wakes once per s - WAKE_LEAD items). Rings that hold every item of a run
 * (the usual case, see `ringSlots`) never wake anyone.
 */
import type { GeneratorState } from './torch-rng.js';

/** Int32 slots of the control block. */
const CTRL = {
  produced: 0, released: 1, stop: 2, failed: 3,
  /** 1 while the producer waits for room */
  sleeping: 4,
  /** the `released` value at which the sleeping producer wants a wake-up */
  wakeAt: 5,
} as const;

/** Items still ready when a sleeping producer is woken: time for it to catch up before the consumer waits. */
const WAKE_LEAD = 2;
/** Bytes of a ring's control block. */
export const CONTROL_BYTES = 8 * 4;
/** Most bytes one ring may hold: past that the producer waits for room. */
const MAX_RING_BYTES = 32 * 1024 * 1024;

/**
 * Slots for `items` expected items of `numel` floats: all of them and WAKE_LEAD more when they fit (a producer
 * that runs past the plan then sleeps asking for a wake-up only past the plan's last item), never fewer than `min`
 * (which must exceed WAKE_LEAD).
 */
export function ringSlots(items: number, numel: number, min: number): number {
  return Math.max(min, Math.min(items + WAKE_LEAD, Math.floor(MAX_RING_BYTES / (numel * 4))));
}

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
 * The producer side, run in a worker: item k goes into slot k % slots once the consumer has released item
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
        // Sleep until the consumer is WAKE_LEAD items from needing item k. The flag is set before `released` is read
        // again, so a consumer that releases after that read sees the flag and wakes us, and one that released
        // before it is seen here.
        Atomics.store(ctrl, CTRL.wakeAt, k - WAKE_LEAD);
        Atomics.store(ctrl, CTRL.sleeping, 1);
        const now = Atomics.load(ctrl, CTRL.released);
        if (now === released && !Atomics.load(ctrl, CTRL.stop)) Atomics.wait(ctrl, CTRL.released, now, 1000);
        Atomics.store(ctrl, CTRL.sleeping, 0);
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

/** Consumer side: item k - 1 and those before it are done with (their slots may be refilled). */
export function releaseBefore(ctrl: Int32Array, k: number): void {
  Atomics.store(ctrl, CTRL.released, k);
  if (Atomics.load(ctrl, CTRL.sleeping) && k >= Atomics.load(ctrl, CTRL.wakeAt)) Atomics.notify(ctrl, CTRL.released);
}

/** Consumer side: waits until item k is in its slot, the producer failed, or `deadline` passed. */
export function awaitItem(ctrl: Int32Array, k: number, deadline: number): 'ready' | 'failed' | 'timeout' {
  for (;;) {
    const produced = Atomics.load(ctrl, CTRL.produced);
    if (produced > k) return 'ready';
    if (Atomics.load(ctrl, CTRL.failed)) return 'failed';
    if (performance.now() > deadline) return 'timeout';
    Atomics.wait(ctrl, CTRL.produced, produced, 100);
  }
}

/** Consumer side: tells the producer to stop (it says so on its port once it has). */
export function stopProducer(ctrl: Int32Array): void {
  Atomics.store(ctrl, CTRL.stop, 1);
  Atomics.notify(ctrl, CTRL.released);
}
