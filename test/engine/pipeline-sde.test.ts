/**
 * DPM++ SDE through the SD 1.x pipeline (txt2img batch 2, img2img with Karras sigmas) against diffusers 0.30.3's
 * StableDiffusion(Img2Img)Pipeline on tiny-sd15 (test/fixtures/models/tiny-sd15-sde.cases.json, made by
 * scripts/fixtures/gen_sde_pipeline.py with noise_sampler_seed = the image seeds, the engine's rule for folder configs
 * without one): final latents within 2e-3 + 1e-3·|ref|, images within 2/255.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { createEngine } from '../../src/engine/create-engine.js';
import { FIXTURE_MODELS, loadCases, runCase } from '../helpers/fixture-cases.js';

describe('DPM++ SDE in the SD 1.x pipeline reproduces diffusers', async () => {
  const engine = await createEngine();
  beforeAll(async () => {
    await engine.loadModel({ id: 'tiny-sd15', dir: join(FIXTURE_MODELS, 'tiny-sd15') });
  });
  afterAll(() => engine.close());

  for (const c of loadCases('tiny-sd15-sde')) {
    it(`${c.id}: latents and images`, async () => {
      await runCase(engine, c);
    });
  }
});
