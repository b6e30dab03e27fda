/**
 * SD 1.x / 2.x, SDXL and SD3 pipelines against diffusers' reference outputs (test/fixtures/models/*.cases.json), through the same
 * engine path as `sdbot generate`: final latents within 2e-3 + 1e-3·|ref|, images within 2/255 per pixel.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/create-engine.js';
import { FIXTURE_MODELS, flatten, loadCases, runCase } from '../helpers/fixture-cases.js';

const MODELS = ['tiny-sd15', 'tiny-sd15-inpaint', 'tiny-sd2-v', 'tiny-sdxl', 'tiny-x4-upscaler', 'tiny-sd2-depth', 'tiny-sd3', 'tiny-sd15-controlnet', 'tiny-sdxl-refiner', 'tiny-sd35', 'tiny-ldm-vq'];

describe('SD 1.x / 2.x / SDXL pipelines reproduce diffusers', async () => {
  const engine = await createEngine();
  beforeAll(async () => {
    for (const id of MODELS) await engine.loadModel({ id, dir: join(FIXTURE_MODELS, id) });
  });
  afterAll(() => engine.close());

  for (const model of MODELS) {
    for (const c of loadCases(model)) {
      it(`${c.id}: latents and images`, async () => {
        const { result } = await runCase(engine, c);
        expect(result.images.map((im) => im.seed)).toEqual(result.images.map((_, i) => String(c.seed + i)));
      });
    }
  }

  it('VQ first stage: decoding the reference latents picks exactly the reference codebook entries', async () => {
    const vq = engine.getModel('tiny-ldm-vq')!;
    for (const c of loadCases('tiny-ldm-vq')) {
      const latents = Float32Array.from(flatten(c.outputs.latents), (v) => Math.fround(v / 0.5));
      const out = await vq.vaeDecoder.run({ latent_sample: { data: latents, dims: c.outputs.latents_shape } });
      expect(Array.from(out['codebook_indices']!.data)).toEqual(flatten((c.outputs as Record<string, unknown>)['codebook_indices']));
    }
  });
});
