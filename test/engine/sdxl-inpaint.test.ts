/**
 * SDXL inpainting and outpainting against scripts/fixtures/gen_sdxl_inpaint.py's cases
 * (test/fixtures/models/tiny-sdxl-inpaint.cases.json, diffusers' StableDiffusionXLInpaintPipeline 0.30.3): the legacy
 * blend on tiny-sdxl's 4-channel UNet (strength 1 and 0.6 with micro-conditioning), the 9-channel tiny-sdxl-inpaint
 * UNet (strength 1 and the pipeline's default 0.9999, which drops a step), an outpaint on it, and the expert hand-off
 * with a mask (the inpaint base to 0.8, tiny-sdxl-refiner's inpaint pipeline from there).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/create-engine.js';
import { loadModel } from '../../src/engine/loaded-model.js';
import { runStableDiffusionXL, sdxlTimeIds } from '../../src/engine/pipelines/stable-diffusion-xl.js';
import type { OutpaintSpec } from '../../src/queue/job.js';
import { parseRequest } from '../../src/queue/job.js';
import { caseRequest, FIXTURE_MODELS, loadCases, runCase, type FixtureCase } from '../helpers/fixture-cases.js';

interface TimeIds { negative: number[]; positive: number[] }

interface SdxlInpaintCase extends FixtureCase {
  unet_in_channels: number;
  time_ids: TimeIds;
  outpaint?: OutpaintSpec;
  canvas_size?: [number, number];
  /** The expert hand-off: the inpaint base's part (the case's own fields are the refiner's). */
  base_model?: string;
  base?: { time_ids: TimeIds };
  aesthetic_score?: number;
}

const CASES = loadCases('tiny-sdxl-inpaint') as SdxlInpaintCase[];
const fixture = (name: string) => join(FIXTURE_MODELS, name);

describe('SDXL inpainting reproduces diffusers', async () => {
  const engine = await createEngine();
  beforeAll(async () => {
    for (const id of new Set(CASES.flatMap((c) => [c.model, c.base_model ?? c.model]))) await engine.loadModel({ id, dir: fixture(id) });
  });
  afterAll(() => engine.close());

  it('covers both UNet kinds, strength 1 and below, and an outpaint', () => {
    expect(new Set(CASES.map((c) => c.unet_in_channels))).toEqual(new Set([4, 9]));
    expect(CASES.some((c) => c.strength === 0.9999 && c.timesteps.length === c.steps - 1)).toBe(true);
    expect(CASES.some((c) => c.outpaint)).toBe(true);
    expect(CASES.some((c) => c.base_model)).toBe(true);
  });

  for (const c of CASES) {
    it(`${c.id}: time ids, latents and images`, async () => {
      const size = { width: c.width, height: c.height };
      const micro = { originalSize: caseRequest(c).originalSize ?? null, cropTopLeft: caseRequest(c).cropTopLeft ?? null, targetSize: null };
      // A hand-off case's own time ids are the refiner's (aesthetic score last); the base's are the 6 size/crop ids.
      expect(sdxlTimeIds({ ...size, microConditioning: micro }, c.aesthetic_score ?? null)).toEqual(c.time_ids.positive);
      if (c.base) expect(sdxlTimeIds({ ...size, microConditioning: micro }, null)).toEqual(c.base.time_ids.positive);
      const request = c.outpaint
        ? parseRequest({
          ...caseRequest(c), initImage: { kind: 'file', path: fixture(c.inputs!['source_image']!) }, maskImage: null,
          outpaint: c.outpaint, width: null, height: null,
        })
        : parseRequest(caseRequest(c));
      const { result } = await runCase(engine, c, request);
      expect(result.images.map((im) => [im.width, im.height])).toEqual(result.images.map(() => [c.width, c.height]));
    });
  }

  it('refuses a job without a mask on the inpaint UNet, and a mask of other proportions', async () => {
    const c = CASES.find((k) => k.unet_in_channels === 9 && !k.outpaint)!;
    await expect(engine.runJob(parseRequest({ ...caseRequest(c), kind: 'img2img', maskImage: null }))).rejects.toThrow(/inpainting model: attach a mask/);
    await expect(engine.runJob(parseRequest({ ...caseRequest(c), kind: 'txt2img', maskImage: null }))).rejects.toThrow(/inpainting model/);
    const wideMask = { kind: 'file' as const, path: fixture('sdxl_outpaint_pan_down_mask.png') };
    await expect(engine.runJob(parseRequest({ ...caseRequest(c), maskImage: wideMask }))).rejects.toThrow(/mask is 64×96 but the image is 64×64/);
  });

  it('refuses an inpaint hand-off to a 9-channel refiner, readably', async () => {
    const c = CASES.find((k) => k.base_model)!;
    await expect(engine.runJob(parseRequest({ ...caseRequest(c), refiner: { model: 'tiny-sdxl-inpaint', switchAt: 0.8 } })))
      .rejects.toThrow(/tiny-sdxl-inpaint is an inpainting UNet: a refiner for an inpaint hand-off must be an ordinary one/);
  });
});

describe('SDXL inpaint pipeline inputs', () => {
  it('refuses a mask without an image and a mask of another size', async () => {
    const model = await loadModel(fixture('tiny-sdxl'));
    const c = CASES[0]!;
    const mask = { data: new Float32Array(64 * 64), dims: [1, 1, 64, 64] };
    const init = { data: new Float32Array(3 * 64 * 32), dims: [1, 3, 64, 32] };
    const base = {
      prompt: c.prompt, negativePrompt: null, seeds: [1], steps: 2, guidance: 5, guidanceRescale: 0, sampler: 'euler', schedule: 'default',
      width: 64, height: 64, strength: 1,
    };
    // Only the fields the inpaint checks read; the run stops before anything else is needed.
    const params = (over: object) => ({ ...base, init: null, mask, ...over }) as unknown as Parameters<typeof runStableDiffusionXL>[1];
    await expect(runStableDiffusionXL(model, params({}))).rejects.toThrow(/A mask needs an image/);
    await expect(runStableDiffusionXL(model, params({ init }))).rejects.toThrow(/mask is 64×64 but the image is 32×64/);
  });
});
