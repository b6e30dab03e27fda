/**
 * SD3 inpainting and outpainting against diffusers' StableDiffusion3InpaintPipeline on tiny-sd3
 * (scripts/fixtures/gen_sd3_inpaint.py → tiny-sd3-inpaint.cases.json): strength 1 and below, with and without T5 and
 * CFG, batch 2, and an outpaint job whose canvas and mask the engine builds itself; and on tiny-sd3-inpaint, whose
 * 33-channel transformer takes the mask and masked-image latents as input channels.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelInfosFromConfig } from '../../src/bot/core/model-info.js';
import { createEngine } from '../../src/engine/create-engine.js';
import { decodeImage, readPngParameters } from '../../src/engine/image/index.js';
import { describeOutpaint, outpaintCanvas, outpaintPads } from '../../src/engine/image/outpaint.js';
import { outpaintSchema, parseRequest, type OutpaintSpec } from '../../src/queue/job.js';
import { caseRequest, FIXTURE_MODELS, loadCases, maxAbsDiff, rawRgb, runCase } from '../helpers/fixture-cases.js';

const MODEL = 'tiny-sd3';
const CASES = loadCases('tiny-sd3-inpaint');
const fixture = (name: string) => join(FIXTURE_MODELS, name);

describe('SD3 inpainting reproduces diffusers', async () => {
  const engine = await createEngine();
  beforeAll(async () => {
    await engine.loadModel({ id: MODEL, dir: fixture(MODEL) });
    await engine.loadModel({ id: 'tiny-sd3-inpaint', dir: fixture('tiny-sd3-inpaint') });
    await engine.loadModel({ id: 'tiny-sd3-controlnet', dir: fixture('tiny-sd3-controlnet') });
  });
  afterAll(() => engine.close());

  for (const c of CASES.filter((x) => !x['outpaint'])) {
    it(`${c.id}: latents and images`, async () => {
      await runCase(engine, c);
    });
  }

  for (const c of CASES.filter((x) => x['outpaint'])) {
    const spec = outpaintSchema.parse(c['outpaint']);
    const inputs = c.inputs!;

    it(`${c.id}: the engine's canvas and mask equal the generator's`, async () => {
      const src = await decodeImage(readFileSync(fixture(inputs['source_image']!)));
      const pads = outpaintPads(spec, src.width, src.height, 2048);
      expect(pads).toEqual(c['outpaint_pads']);
      const { canvas, mask } = outpaintCanvas(src, pads, spec.overlap);
      expect(maxAbsDiff(canvas.rgb, (await rawRgb(fixture(inputs['canvas_image']!))).data)).toBe(0);
      const refMask = await rawRgb(fixture(inputs['mask_image']!));
      expect(Array.from(mask)).toEqual(Array.from(refMask.data.filter((_, i) => i % 3 === 0)));
    });

    it(`${c.id}: latents and images of the outpaint job`, async () => {
      const request = parseRequest({
        ...caseRequest(c), initImage: { kind: 'file', path: fixture(inputs['source_image']!) }, maskImage: null,
        outpaint: spec as OutpaintSpec, width: null, height: null, strength: 1,
      });
      const { result } = await runCase(engine, c, request);
      expect(result.images.map((im) => [im.width, im.height])).toEqual(result.images.map(() => [c.width, c.height]));
      expect(readPngParameters(result.images[0]!.png)).toContain(describeOutpaint(request.outpaint!));
    });
  }

  it('says why it cannot inpaint with a ControlNet or with skip-layer guidance', async () => {
    const c = CASES.find((x) => x.id === 'sd3inp_s06_no_t5')!;
    const req = caseRequest(c);
    await expect(engine.runJob(parseRequest({ ...req, slg: { layers: [0], scale: 2.5, start: 0.01, end: 0.2 } }))).rejects.toThrow(/Skip-layer guidance cannot be combined with SD3 inpainting/);
    const cn = { ...req, model: 'tiny-sd3-controlnet', controlImage: { kind: 'file' as const, path: fixture('edges_64.png') } };
    await expect(engine.runJob(parseRequest(cn))).rejects.toThrow(/inpainting cannot be combined with a ControlNet/);
  });

  it('an inpainting transformer (33 channels) asks for a mask', async () => {
    const c = CASES.find((x) => x.id === 'sd3inp33_s1')!;
    const req = { ...caseRequest(c), kind: 'img2img' as const, maskImage: null };
    await expect(engine.runJob(parseRequest(req))).rejects.toThrow(/inpainting model: attach a mask/);
    await expect(engine.runJob(parseRequest({ ...req, kind: 'txt2img', initImage: null }))).rejects.toThrow(/inpainting model: attach a mask/);
  });
});

describe('SD3 inpaint folders in the bot', () => {
  it('a StableDiffusion3InpaintPipeline folder is the SD3 family\'s inpaint model', () => {
    const [info] = modelInfosFromConfig({ models: [{ id: 'sd3-inp', dir: fixture('tiny-sd3-inpaint'), load: true }], defaultModel: 'sd3-inp' });
    expect(info).toMatchObject({ family: 'sd3', role: 'inpaint' });
  });
});
