/**
 * DPM++ SDE's Brownian noise computed ahead in workers gives the very bits of the in-thread tree: against the
 * diffusers/torchsde reference noise of test/fixtures/reference/sched_dpmpp_sde.json, and through whole denoising
 * loops (one tree, per-image trees, img2img's begin index) against the same scheduler stepped without workers.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BrownianNoise } from '../../src/engine/sampling/brownian-stream.js';
import { BrownianTreeNoiseSampler } from '../../src/engine/sampling/brownian-tree.js';
import { DPMSolverSDEScheduler } from '../../src/engine/sampling/samplers/dpm-solver-sde.js';
import { img2imgTimesteps } from '../../src/engine/sampling/index.js';
import type { SchedulerConfig } from '../../src/engine/sampling/scheduler.js';
import { denoise } from '../../src/engine/pipelines/steps.js';

const f32 = Math.fround;

interface Brownian {
  tree: { sigma_min: number; sigma_max: number; shape: number[] };
  calls: { sigma: number; sigma_next: number; noise: number[] }[];
}
interface TraceCase {
  config: SchedulerConfig;
  seeds: { noise_sampler_seed: string | string[] };
  brownian: Brownian;
  img2img: { brownian: Brownian }[];
}
const trace = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'reference', 'sched_dpmpp_sde.json'), 'utf8')) as { cases: TraceCase[] };

function expectSameBits(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], f32(expected[i]!))) expect.fail(`${what}[${i}]: got ${actual[i]}, expected ${f32(expected[i]!)}`);
  }
}

const SD15 = {
  num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', trained_betas: null,
  prediction_type: 'epsilon', timestep_spacing: 'linspace', steps_offset: 1, noise_sampler_seed: null,
} as const satisfies SchedulerConfig;

/** A stand-in model output that depends on the input, so every step's noise feeds the next. */
function fakeModel(x: Float32Array, t: number): Float32Array {
  return x.map((v, k) => f32(0.3 * Math.sin(v + k * 1e-3) + t * 1e-4));
}

describe('BrownianNoise in workers', () => {
  it('answers every reference query with the reference bits, all from the workers', async () => {
    const runs = trace.cases.flatMap((c) => [c.brownian, ...c.img2img.map((im) => im.brownian)].map((b) => ({ c, b })));
    for (const { c, b } of runs) {
      const seed = c.seeds.noise_sampler_seed;
      const seeds = Array.isArray(seed) ? seed.map(BigInt) : BigInt(seed);
      const numel = b.tree.shape.reduce((x, y) => x * y, 1);
      const queries = b.calls.map((q) => [f32(q.sigma), f32(q.sigma_next)] as const);
      const noise = new BrownianNoise(f32(b.tree.sigma_min), f32(b.tree.sigma_max), numel, seeds, queries, 1);
      await noise.prepare();
      b.calls.forEach((q, k) => expectSameBits(noise.sample(f32(q.sigma), f32(q.sigma_next)), q.noise, `seed ${String(seed)} call ${k}`));
      expect(noise.prefetched).toBe(b.calls.length);
      noise.close();
    }
  });

  it('falls back to the in-thread tree, same bits, when a query is not the expected one', async () => {
    const queries = [[10, 5], [5, 2]] as const;
    const noise = new BrownianNoise(0.03, 14.6, 64, [7n, 8n], queries, 1);
    const ref = new BrownianTreeNoiseSampler(0.03, 14.6, 64, [7n, 8n]);
    await noise.prepare();
    expectSameBits(noise.sample(10, 5), ref.sample(10, 5), 'expected query');
    expectSameBits(noise.sample(6, 2), ref.sample(6, 2), 'unexpected query');
    expectSameBits(noise.sample(5, 2), ref.sample(5, 2), 'after the fallback');
    expect(noise.prefetched).toBe(1);
    noise.close();
  });
});

describe('DPM++ SDE through the denoising loop', () => {
  const cases = [
    { label: 'per-image trees, 2x4x64x64', config: SD15, seeds: [11n, 12n], dims: [2, 4, 64, 64], strength: 1 },
    { label: 'one tree (noise_sampler_seed), 1x4x64x80', config: { ...SD15, noise_sampler_seed: 4242 }, seeds: [1n], dims: [1, 4, 64, 80], strength: 1 },
    { label: 'img2img strength 0.6, karras, 2x4x48x48', config: { ...SD15, use_karras_sigmas: true }, seeds: [5n, 6n], dims: [2, 4, 48, 48], strength: 0.6 },
  ];
  for (const { label, config, seeds, dims, strength } of cases) {
    it(`${label}: prefetched and in-thread noise give the same latents`, async () => {
      const steps = 5;
      const numel = dims.reduce((a, b) => a * b, 1);
      const start = new Float32Array(numel).map((_, k) => f32(Math.cos(k * 0.37) * 3));
      const noNoise = (): Float32Array => {
        throw new Error('DPM++ SDE must not draw from the pipeline generators');
      };

      const inThread = new DPMSolverSDEScheduler(config, steps, seeds);
      const { timesteps } = img2imgTimesteps(inThread, steps, strength);
      let x = start;
      for (const t of timesteps) x = Float32Array.from(inThread.step(fakeModel(inThread.scaleModelInput(x, t), t), t, x, noNoise));

      const ahead = new DPMSolverSDEScheduler(config, steps, seeds);
      img2imgTimesteps(ahead, steps, strength);
      const out = await denoise({
        scheduler: ahead, timesteps, latents: { data: start, dims }, guidance: 1, guidanceRescale: 0, noise: noNoise,
        model: async (input, t) => fakeModel(input.data, t),
      });
      expect(ahead.prefetchedNoise).toBe(timesteps.length - 1);
      expectSameBits(out.data, x, label);
    });
  }
});
