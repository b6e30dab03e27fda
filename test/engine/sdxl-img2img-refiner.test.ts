/**
 * SDXL img2img with the refiner hand-off, against scripts/fixtures/gen_sdxl_img2img_refiner.py (diffusers 0.30.3:
 * tiny-sdxl as StableDiffusionXLImg2ImgPipeline with strength and denoising_end, then tiny-sdxl-refiner as
 * StableDiffusionXLImg2ImgPipeline with denoising_start on its latents and the same generators).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/create-engine.js';
import type { PipelineOutput } from '../../src/engine/pipelines/types.js';
import { parseRequest } from '../../src/queue/job.js';
import { caseRequest, FIXTURE_MODELS, loadCases, maxAbsDiff, runCase } from '../helpers/fixture-cases.js';

const CASES = loadCases('tiny-sdxl-img2img-refiner');

describe('SDXL img2img + refiner hand-off reproduces diffusers', async () => {
  const engine = await createEngine();
  beforeAll(async () => {
    await engine.loadModel({ id: 'tiny-sdxl', dir: join(FIXTURE_MODELS, 'tiny-sdxl') });
    await engine.loadModel({ id: 'tiny-sdxl-refiner', dir: join(FIXTURE_MODELS, 'tiny-sdxl-refiner') });
  });
  afterAll(() => engine.close());

  it('has the cases the generator promises', () => {
    expect(CASES.map((c) => [c.id, c.pipeline, c['strength'], c['denoising_start']])).toEqual([
      ['sdxlimgref_s07', 'img2img', 0.7, 0.8], ['sdxlimgref_s09_euler_a', 'img2img', 0.9, 0.6],
    ]);
  });

  for (const c of CASES) {
    it(`${c.id}: the base's strength slice to the switch point, then the refiner`, async () => {
      const request = parseRequest(caseRequest(c));
      expect(request).toMatchObject({ kind: 'img2img', model: 'tiny-sdxl', refiner: { model: 'tiny-sdxl-refiner', switchAt: c['denoising_start'] } });
      const { result } = await runCase(engine, c, request);
      expect(result.notes.join(' ')).toMatch(/Refined by tiny-sdxl-refiner/);
    });
  }

  it('starts from the init image (the same job without it is another picture)', async () => {
    const c = CASES[0]!;
    const outputs: PipelineOutput[] = [];
    const r = caseRequest(c);
    await engine.runJob(parseRequest(r), { onOutput: (o) => outputs.push(o) });
    const { initImage: _init, strength: _strength, ...withoutImage } = r;
    await engine.runJob(parseRequest({ ...withoutImage, kind: 'txt2img' }), { onOutput: (o) => outputs.push(o) });
    expect(maxAbsDiff(outputs[0]!.latents.data, outputs[1]!.latents.data)).toBeGreaterThan(1e-2);
  });
});
