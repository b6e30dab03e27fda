/** The worker-backed per-step noise gives exactly the draws the generators would give in place, job after job. */
import { describe, expect, it } from 'vitest';
import { noiseStream } from '../../src/engine/sampling/noise-stream.js';
import { TorchGenerator } from '../../src/engine/sampling/torch-rng.js';

function inlineDraw(gens: TorchGenerator[], shape: number[]): Float32Array {
  const per = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(per * gens.length);
  gens.forEach((g, i) => out.set(g.randn([1, ...shape]), i * per));
  return out;
}

describe('noiseStream', () => {
  it('matches in-place draws through the worker, across two jobs on the pooled worker', async () => {
    for (const seeds of [[3n, 4n], [77n]]) {
      const shape = [4, 8, 12];
      const stream = noiseStream(seeds.map((s) => new TorchGenerator(s)), shape, 16);
      const ref = seeds.map((s) => new TorchGenerator(s));
      await stream.prepare();
      for (let k = 0; k < 7; k++) {
        const got = Float32Array.from(stream());
        expect(got).toEqual(inlineDraw(ref, shape));
      }
      stream.close();
    }
  });

  it('starts drawing in the worker before the first draw when the sampler draws every step', async () => {
    const gens = [new TorchGenerator(11n), new TorchGenerator(12n)];
    gens[0]!.randn([3]); // a generator mid-stream, with a cached normal, as after the latents' draw
    const ref = gens.map((g) => TorchGenerator.fromState(g.getState()));
    const shape = [4, 6, 6];
    const stream = noiseStream(gens, shape, 16);
    const before = gens.map((g) => g.getState());
    await stream.prepare(5);
    for (let k = 0; k < 5; k++) expect(Float32Array.from(stream())).toEqual(inlineDraw(ref, shape));
    // every draw came from the worker: an inline first draw would have advanced this thread's generators
    expect(gens.map((g) => g.getState())).toEqual(before);
    stream.close();
  });

  it('draws in place below the worker threshold', async () => {
    const stream = noiseStream([new TorchGenerator(5n)], [4, 2, 2]);
    await stream.prepare();
    const ref = new TorchGenerator(5n);
    expect(stream()).toEqual(ref.randn([1, 4, 2, 2]));
    stream.close();
  });

  it('continues a generator exactly from its saved state', () => {
    const a = new TorchGenerator(9n);
    a.randn([3]); // leaves a cached normal
    a.randn([40]);
    const b = TorchGenerator.fromState(a.getState());
    expect(b.randn([5])).toEqual(a.randn([5]));
    expect(b.randn([33])).toEqual(a.randn([33]));
  });
});
