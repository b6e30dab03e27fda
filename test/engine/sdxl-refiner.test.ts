/**
 * The SDXL expert hand-off. With the base as its own "refiner" the split run must equal one full run: that holds only
 * if the schedule is cut and resumed at the same index and the generators continue exactly where the base left them
 * (Euler a draws per-step noise).
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/create-engine.js';
import { sdxlTimeIds } from '../../src/engine/pipelines/stable-diffusion-xl.js';
import type { PipelineOutput } from '../../src/engine/pipelines/types.js';
import { parseRequest } from '../../src/queue/job.js';
import { FIXTURE_MODELS, maxAbsDiff } from '../helpers/fixture-cases.js';

describe('SDXL refiner hand-off', async () => {
  const engine = await createEngine();
  await engine.loadModel({ id: 'tiny-sdxl', dir: join(FIXTURE_MODELS, 'tiny-sdxl') });
  await engine.loadModel({ id: 'sd15', dir: join(FIXTURE_MODELS, 'tiny-sd15') });
  afterAll(() => engine.close());
  const base = { model: 'tiny-sdxl', prompt: 'a photo of a cat', seed: '42', steps: 10, count: 2, width: 64, height: 64 } as const;

  // Single-step samplers only: a multistep sampler (DPM++ 2M) restarts at first order in the refiner's fresh
  // scheduler, in diffusers as here, so its split run legitimately differs from a full one.
  for (const sampler of ['euler_a', 'euler', 'ddim'] as const) {
    it(`${sampler}: base to 0.6 + the same model from 0.6 equals one full run`, async () => {
      let full: PipelineOutput | undefined;
      let split: PipelineOutput | undefined;
      await engine.runJob(parseRequest({ ...base, sampler }), { onOutput: (o) => (full = o) });
      const r = await engine.runJob(parseRequest({ ...base, sampler, refiner: { model: 'tiny-sdxl', switchAt: 0.6 } }), { onOutput: (o) => (split = o) });
      expect(maxAbsDiff(split!.latents.data, full!.latents.data)).toBeLessThan(1e-5);
      expect(r.notes.join(' ')).toMatch(/Refined by tiny-sdxl from 60%/);
    });
  }

  it('refuses a refiner with another latent format, and a switch point outside (0, 1)', async () => {
    await expect(engine.runJob(parseRequest({ ...base, refiner: { model: 'sd15', switchAt: 0.8 } }))).rejects.toThrow(/SDXL base and an SDXL refiner|latent format/);
    await expect(engine.runJob(parseRequest({ ...base, refiner: { model: 'tiny-sdxl', switchAt: 1 } }))).rejects.toThrow(/between 0 and 1/);
    await expect(engine.runJob(parseRequest({ ...base, refiner: { model: 'nope', switchAt: 0.8 } }))).rejects.toThrow(/Refiner "nope" is not loaded/);
  });

  it('builds 6 time ids for a base and 5 (aesthetic score last) for a refiner', () => {
    const p = { width: 64, height: 48, microConditioning: { originalSize: { width: 96, height: 128 }, cropTopLeft: { top: 8, left: 16 }, targetSize: null } };
    expect(sdxlTimeIds(p, null)).toEqual([128, 96, 8, 16, 48, 64]);
    expect(sdxlTimeIds(p, 6)).toEqual([128, 96, 8, 16, 6]);
  });
});
