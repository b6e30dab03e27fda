/**
 * SDXL ControlNet with img2img and inpaint, against scripts/fixtures/gen_sdxl_controlnet_img2img.py (diffusers 0.30.3's
 * StableDiffusionXLControlNetImg2ImgPipeline and StableDiffusionXLControlNetInpaintPipeline): img2img at two strengths
 * (one in guess mode with two controls), inpaint on tiny-sdxl-controlnet's 4-channel UNet (the legacy blend, with and
 * without CFG) and on tiny-sdxl-inpaint's 9-channel UNet with residual inputs (strength 1, and the default 0.9999 in
 * guess mode).
 */
import { mkdirSync, mkdtempSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/create-engine.js';
import { readPngParameters } from '../../src/engine/image/index.js';
import { requestFromOptions } from '../../src/cli/generate.js';
import { sdxlTimeIds } from '../../src/engine/pipelines/stable-diffusion-xl.js';
import { parseRequest, type GenerationRequestInput } from '../../src/queue/job.js';
import { caseRequest, controlCaseRequest, FIXTURE_MODELS, loadCases, maxAbsDiff, runCase, type CaseControl, type FixtureCase } from '../helpers/fixture-cases.js';

const XLCN = join(FIXTURE_MODELS, 'tiny-sdxl-controlnet');
/** The same ControlNet graph attached by id (the 9-channel folder has no controlnet/ of its own). */
const ATTACHED = [{ id: 'xl-edges', dir: join(XLCN, 'controlnet') }];


interface XlControlCase extends FixtureCase {
  controls: (CaseControl & { controlnet_sample_shape: number[] })[];
  guess_mode: boolean;
  unet_in_channels: number;
  time_ids: { negative: number[]; positive: number[] };
}


const allCases = loadCases('tiny-sdxl-controlnet-img2img') as XlControlCase[];
const cases4 = allCases.filter((c) => c.model === 'tiny-sdxl-controlnet');
const cases9 = allCases.filter((c) => c.model === 'tiny-sdxl-inpaint');

/** The latents of one image of a job (count 1), for "the control matters" checks. */
async function latentsOf(engine: Awaited<ReturnType<typeof createEngine>>, r: GenerationRequestInput): Promise<Float32Array> {
  let out: Float32Array | undefined;
  await engine.runJob(parseRequest({ ...r, count: 1 }), { onOutput: (o) => (out = o.latents.data) });
  return out!;
}

it('the generator covers img2img at two strengths, both inpaint UNets, guess mode, no CFG and batches of 2', () => {
  expect(cases4.map((c) => [c.pipeline, c.strength])).toEqual([['img2img', 0.6], ['img2img', 0.85], ['img2img', 0.7], ['inpaint', 1], ['inpaint', 0.75]]);
  expect(cases9.map((c) => [c.pipeline, c.unet_in_channels, c.strength])).toEqual([['inpaint', 9, 1], ['inpaint', 9, 0.9999]]);
  expect(allCases.filter((c) => c.guess_mode).map((c) => c.id)).toEqual(['sdxlcnimg_guess_two', 'sdxlcninp9_default_strength_guess']);
  expect(allCases.some((c) => c.guidance_scale <= 1 && c.batch_size === 2)).toBe(true);
  // Every ControlNet saw the 4 latent channels, the conditional half only in guess mode with CFG.
  for (const c of allCases) {
    const rows = c.guess_mode || c.guidance_scale <= 1 ? c.batch_size : 2 * c.batch_size;
    for (const k of c.controls) expect(k.controlnet_sample_shape.slice(0, 2)).toEqual([rows, 4]);
  }
});

describe('SDXL ControlNet img2img and inpaint (4-channel UNet) reproduce diffusers', async () => {
  const engine = await createEngine();
  beforeAll(async () => {
    await engine.loadModel({ id: 'tiny-sdxl-controlnet', dir: XLCN, controlnets: ATTACHED });
    await engine.loadModel({ id: 'tiny-sdxl-refiner', dir: join(FIXTURE_MODELS, 'tiny-sdxl-refiner') });
  });
  afterAll(() => engine.close());

  for (const c of cases4) {
    it(`${c.id}: time ids, latents and images`, async () => {
      // diffusers' size default for these pipelines is the control image's size, which is the job's.
      expect(sdxlTimeIds({ width: c.width, height: c.height }, null)).toEqual(c.time_ids.positive);
      expect(c.time_ids.negative).toEqual(c.time_ids.positive);
      const { result } = await runCase(engine, c, parseRequest(controlCaseRequest(c, 'tiny-sdxl-controlnet')));
      expect(readPngParameters(result.images[0]!.png)?.includes('Guess Mode: True')).toBe(c.guess_mode);
    });
  }

  it('the control changes img2img and inpaint, and guess mode changes the picture (the cases are not plain runs)', async () => {
    for (const id of ['sdxlcnimg_s06', 'sdxlcninp_legacy_s1']) {
      const r = controlCaseRequest(cases4.find((c) => c.id === id)!, 'tiny-sdxl-controlnet');
      expect(maxAbsDiff(await latentsOf(engine, r), await latentsOf(engine, { ...r, controls: [] }))).toBeGreaterThan(1e-2);
    }
    const g = controlCaseRequest(cases4.find((c) => c.guess_mode)!, 'tiny-sdxl-controlnet');
    expect(maxAbsDiff(await latentsOf(engine, g), await latentsOf(engine, { ...g, controlGuessMode: false }))).toBeGreaterThan(1e-2);
  });

  it('sdbot generate --init-image --mask --control-image … makes the inpaint job that reproduces sdxlcninp_legacy_s1', async () => {
    const c = cases4.find((k) => k.id === 'sdxlcninp_legacy_s1')!;
    const k = c.controls[0]!;
    const request = requestFromOptions({
      model: XLCN, prompt: c.prompt, seed: String(c.seed), out: '/tmp', count: c.batch_size, steps: c.steps, cfg: c.guidance_scale,
      sampler: 'euler_a', width: c.width, height: c.height, initImage: join(FIXTURE_MODELS, c.inputs!['init_image']!),
      mask: join(FIXTURE_MODELS, c.inputs!['mask_image']!), controlImage: join(FIXTURE_MODELS, k.image), controlEnd: [k.control_guidance_end],
    });
    expect([request.kind, request.strength, request.controlImage?.kind]).toEqual(['inpaint', 1, 'file']);
    await runCase(engine, c, request);
  });

  it('refuses ControlNet img2img with the refiner hand-off, readably (inpaint hands off: sdxl-controlnet-refiner.test.ts)', async () => {
    const c = cases4.find((k) => k.pipeline === 'img2img')!;
    await expect(engine.runJob(parseRequest({ ...controlCaseRequest(c, 'tiny-sdxl-controlnet'), refiner: { model: 'tiny-sdxl-refiner', switchAt: 0.8 } })))
      .rejects.toThrow(/SDXL ControlNet img2img does not go with a refiner hand-off \(only txt2img and inpaint do\): drop the refiner, the init image or the control image/);
  });
});

describe('SDXL ControlNet inpaint with a 9-channel UNet reproduces diffusers (the ControlNet sees the 4 latent channels)', async () => {
  // tiny-sdxl-inpaint with the UNet that takes residuals (the fixture stores only that unet/), the ControlNet attached.
  const dir = join(mkdtempSync(join(tmpdir(), 'sdbot-xlcninp9-')), 'tiny-sdxl-inpaint-cn');
  mkdirSync(dir);
  const src = join(FIXTURE_MODELS, 'tiny-sdxl-inpaint');
  for (const e of readdirSync(src)) symlinkSync(e === 'unet' ? join(FIXTURE_MODELS, 'tiny-sdxl-inpaint-residual-unet', 'unet') : join(src, e), join(dir, e));
  const engine = await createEngine();
  beforeAll(async () => {
    await engine.loadModel({ id: 'xlinp-cn', dir, controlnets: ATTACHED });
  });
  afterAll(() => engine.close());

  for (const c of cases9) {
    it(`${c.id}: latents and images`, async () => {
      expect(sdxlTimeIds({ width: c.width, height: c.height }, null)).toEqual(c.time_ids.positive);
      await runCase(engine, c, parseRequest(controlCaseRequest(c, 'xlinp-cn')));
    });
  }

  it('the control changes the inpainting', async () => {
    const r = controlCaseRequest(cases9[0]!, 'xlinp-cn');
    expect(maxAbsDiff(await latentsOf(engine, r), await latentsOf(engine, { ...r, controls: [] }))).toBeGreaterThan(1e-2);
  });
});
