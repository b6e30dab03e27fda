/** Latent arenas: buffers in wasm memory that kernels use in place, with the same results as ordinary arrays. */
import { describe, expect, it } from 'vitest';
import { latentBuffer, linearCombinationInto, withLatentArena } from '../../src/engine/simd/latent-kernels.js';

const n = 4096;
const ramp = (k: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k) * 3);

describe('latent arena', () => {
  it('hands out zeroed wasm-backed buffers while it has room, then ordinary arrays', async () => {
    await withLatentArena(n, 2, async () => {
      const [a, b, c] = [latentBuffer(n), latentBuffer(n), latentBuffer(n)];
      expect(a.buffer).toBe(b.buffer);
      expect(a.buffer).not.toBe(c.buffer); // the third did not fit
      expect(a.every((v) => v === 0) && b.every((v) => v === 0)).toBe(true);
    });
    expect(latentBuffer(n).buffer.byteLength).toBe(4 * n); // outside any arena: an ordinary array
  });

  it('gives the same bits in place, through copies, and aliased', async () => {
    const [x, y] = [ramp(1), ramp(2)];
    const want = linearCombinationInto([0.3, -1.7], [x, y], 2, new Float32Array(n));
    await withLatentArena(n, 4, async () => {
      const [ax, ay, out] = [latentBuffer(n), latentBuffer(n), latentBuffer(n)];
      ax.set(x);
      ay.set(y);
      expect(linearCombinationInto([0.3, -1.7], [ax, ay], 2, out)).toEqual(want); // all in place
      expect(linearCombinationInto([0.3, -1.7], [ax, y], 2, new Float32Array(n))).toEqual(want); // mixed
      // the output is one of the inputs: it must still read every input before writing
      expect(linearCombinationInto([0.3, -1.7], [ax, ay], 2, ax)).toEqual(want);
    });
  });

  it('survives many arenas in a row (each has its own memory, freed with its buffers)', async () => {
    for (let k = 0; k < 300; k++) {
      await withLatentArena(1 << 16, 8, async () => {
        const b = latentBuffer(1 << 16);
        b[0] = k;
        expect(b[0]).toBe(k);
      });
    }
  });
});
