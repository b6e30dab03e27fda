/**
 * Outpainting against scripts/fixtures/gen_outpaint.py's cases (test/fixtures/models/outpaint.cases.json): the canvas
 * and mask the engine builds equal the generator's PNGs exactly, and the inpaint run on them (9-channel tiny-sd15-inpaint
 * and the legacy blend on tiny-sd15) matches diffusers' StableDiffusionInpaintPipeline within the fixture tolerances.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/create-engine.js';
import { decodeImage, readPngParameters } from '../../src/engine/image/index.js';
import { describeOutpaint, MAX_PAN_ASPECT, outpaintCanvas, outpaintPads } from '../../src/engine/image/outpaint.js';
import { BadRequestError, outpaintSchema, parseRequest, type OutpaintSpec } from '../../src/queue/job.js';
import { caseRequest, FIXTURE_MODELS, maxAbsDiff, rawRgb, runCase, type FixtureCase } from '../helpers/fixture-cases.js';

interface OutpaintCase extends FixtureCase {
  outpaint: OutpaintSpec;
  outpaint_pads: { left: number; right: number; top: number; bottom: number };
  canvas_size: [number, number];
  inputs: { source_image: string; canvas_image: string; mask_image: string };
}

const CASES = (JSON.parse(readFileSync(join(FIXTURE_MODELS, 'outpaint.cases.json'), 'utf8')) as { cases: OutpaintCase[] }).cases;
const fixture = (name: string) => join(FIXTURE_MODELS, name);

async function grayPixels(file: string): Promise<Uint8Array> {
  const { data, info } = await sharp(file).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  expect(info.channels).toBe(1);
  return new Uint8Array(data);
}

describe('outpaint canvas and mask', () => {
  for (const c of CASES) {
    it(`${c.id}: pads, canvas and mask equal the generator's`, async () => {
      const src = await decodeImage(readFileSync(fixture(c.inputs.source_image)));
      const spec = outpaintSchema.parse(c.outpaint);
      const pads = outpaintPads(spec, src.width, src.height, 2048);
      expect(pads).toEqual(c.outpaint_pads);
      const { canvas, mask } = outpaintCanvas(src, pads, spec.overlap);
      expect([canvas.width, canvas.height]).toEqual(c.canvas_size);
      const ref = await rawRgb(fixture(c.inputs.canvas_image));
      expect(maxAbsDiff(canvas.rgb, ref.data)).toBe(0);
      expect(Array.from(mask)).toEqual(Array.from(await grayPixels(fixture(c.inputs.mask_image))));
    });
  }

  it('a pan stops at the side limit and at 4:1, and refuses when there is no room left', () => {
    expect(outpaintPads({ pan: 'left', overlap: 8 }, 512, 512, 2048)).toEqual({ left: 256, right: 0, top: 0, bottom: 0 });
    expect(outpaintPads({ pan: 'down', overlap: 8 }, 512, 768, 2048)).toEqual({ left: 0, right: 0, top: 0, bottom: 384 });
    expect(outpaintPads({ pan: 'right', overlap: 8 }, 1800, 1024, 2048)).toEqual({ left: 0, right: 248, top: 0, bottom: 0 });
    expect(outpaintPads({ pan: 'up', overlap: 8 }, 256, 960, 2048)).toEqual({ left: 0, right: 0, top: 64, bottom: 0 });
    expect(256 * MAX_PAN_ASPECT).toBe(1024);
    expect(() => outpaintPads({ pan: 'left', overlap: 8 }, 2048, 1024, 2048)).toThrow(BadRequestError);
  });

  it('a zoom splits the new width evenly, the odd 8 px going right / bottom', () => {
    expect(outpaintPads({ zoom: 1.5, overlap: 8 }, 512, 768, 2048)).toEqual({ left: 128, right: 128, top: 192, bottom: 192 });
    expect(outpaintPads({ zoom: 1.5, overlap: 8 }, 528, 512, 2048)).toEqual({ left: 128, right: 136, top: 128, bottom: 128 });
  });

  it('the overlap reaches into the source only along extended sides', () => {
    const src = { width: 4, height: 2, rgb: Uint8Array.from({ length: 24 }, (_, i) => i) };
    const { canvas, mask } = outpaintCanvas(src, { left: 8, right: 0, top: 0, bottom: 0 }, 1);
    expect(canvas.width).toBe(12);
    // Row 0: 8 new + 1 overlap painted, then 3 kept.
    expect(Array.from(mask.subarray(0, 12))).toEqual([...Array(9).fill(255), 0, 0, 0]);
    // The new area repeats the first source column.
    expect(Array.from(canvas.rgb.subarray(0, 3))).toEqual([0, 1, 2]);
    expect(Array.from(canvas.rgb.subarray(8 * 3, 9 * 3))).toEqual([0, 1, 2]);
  });
});

describe('outpaint job contract', () => {
  const base = { model: 'm', prompt: 'p', seed: '1', kind: 'inpaint' as const, initImage: { kind: 'file' as const, path: '/x.png' } };

  it('accepts the three forms and fills the defaults', () => {
    expect(parseRequest({ ...base, outpaint: { zoom: 2 } }).outpaint).toEqual({ zoom: 2, overlap: 8 });
    expect(parseRequest({ ...base, outpaint: { pan: 'up', overlap: 0 } }).outpaint).toEqual({ pan: 'up', overlap: 0 });
    expect(parseRequest({ ...base, outpaint: { right: 64 } }).outpaint).toEqual({ left: 0, right: 64, top: 0, bottom: 0, overlap: 8 });
  });

  it('rejects padding off the 8 px grid, nothing to extend, mixed forms and bad zooms', () => {
    for (const outpaint of [{ right: 60 }, { left: 0 }, { zoom: 2, left: 8 }, { zoom: 1 }, { zoom: 5 }, { pan: 'sideways' }, { left: 4096 }]) {
      expect(() => parseRequest({ ...base, outpaint }), JSON.stringify(outpaint)).toThrow();
    }
  });
});

describe('outpainting reproduces diffusers', async () => {
  const engine = await createEngine();
  beforeAll(async () => {
    for (const id of new Set(CASES.map((c) => c.model))) await engine.loadModel({ id, dir: fixture(id) });
  });
  afterAll(() => engine.close());

  for (const c of CASES) {
    it(`${c.id}: latents and images`, async () => {
      const request = parseRequest({
        ...caseRequest(c), initImage: { kind: 'file', path: fixture(c.inputs.source_image) }, maskImage: null,
        outpaint: c.outpaint, width: null, height: null, strength: 1,
      });
      const { result } = await runCase(engine, c, request);
      expect(result.images.map((im) => [im.width, im.height])).toEqual(result.images.map(() => [c.width, c.height]));
      expect(readPngParameters(result.images[0]!.png)).toContain(describeOutpaint(request.outpaint!));
    });
  }

  it('refuses an outpaint on a non-inpaint job and an outpaint with a mask', async () => {
    const c = CASES[0]!;
    const req = { ...caseRequest(c), initImage: { kind: 'file' as const, path: fixture(c.inputs.source_image) }, outpaint: c.outpaint };
    await expect(engine.runJob(parseRequest({ ...req, kind: 'img2img', maskImage: null }))).rejects.toThrow(/inpaint job/);
    await expect(engine.runJob(parseRequest({ ...req, maskImage: { kind: 'file', path: fixture(c.inputs.mask_image) } }))).rejects.toThrow(/own mask/);
  });
});
