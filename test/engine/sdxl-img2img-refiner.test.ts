/**
 * SDXL img2img with the refiner hand-off, against scripts/fixtures/gen_sdxl_img2img_refiner.py (diffusers 0.30.3:
 * tiny-sdxl as StableDiffusionXLImg2ImgPipeline with strength and denoising_end, then tiny-sdxl-refiner as
 * StableDiffusionXLImg2ImgPipeline with denoising_start on its latents and the same generators).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestFromOptions } from '../../src/cli/generate.js';
import { createEngine } from '../../src/engine/create-engine.js';
import type { PipelineOutput } from '../../src/engine/pipelines/types.js';
import { parseRequest } from '../../src/queue/job.js';
import { caseRequest, FIXTURE_MODELS, loadCases, maxAbsDiff, rawRgb, runCase } from '../helpers/fixture-cases.js';

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

describe('sdbot generate --refiner', () => {
  const ROOT = join(import.meta.dirname, '..', '..');

  it('--init-image --strength --refiner --refiner-switch reproduce sdxlimgref_s07', async () => {
    const c = CASES.find((x) => x.id === 'sdxlimgref_s07')!;
    const out = mkdtempSync(join(tmpdir(), 'sdbot-refiner-cli-'));
    const { stdout } = await promisify(execFile)(process.execPath, [
      join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(ROOT, 'src', 'cli.ts'), 'generate',
      '--model', join(FIXTURE_MODELS, 'tiny-sdxl'), '--refiner', join(FIXTURE_MODELS, 'tiny-sdxl-refiner'),
      '--refiner-switch', String(c['denoising_start']), '--prompt', c.prompt, '--seed', String(c.seed), '--count', String(c.batch_size),
      '--steps', String(c.steps), '--cfg', String(c.guidance_scale), '--init-image', join(FIXTURE_MODELS, 'init_64.png'),
      '--strength', String(c['strength']), '--sampler', 'euler', '--out', out,
    ], { cwd: ROOT });
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as { files: string[]; notes: string[] };
    expect(summary.notes.join(' ')).toMatch(/Refined by tiny-sdxl-refiner from 80%/);
    for (const [i, f] of summary.files.entries()) {
      const [ours, ref] = [await rawRgb(f), await rawRgb(join(FIXTURE_MODELS, `${c.id}_${i}.png`))];
      expect(maxAbsDiff(ours.data, ref.data)).toBeLessThanOrEqual(2);
    }
  });

  it('--refiner-switch needs --refiner', () => {
    expect(() => requestFromOptions({ model: 'm', prompt: 'p', out: 'o', refinerSwitch: 0.7 })).toThrow(/--refiner-switch goes with --refiner/);
    expect(requestFromOptions({ model: '/x/base', prompt: 'p', out: 'o', refiner: '/y/ref' }).refiner).toEqual({ model: 'ref', switchAt: 0.8 });
  });
});
