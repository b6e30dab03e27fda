/**
 * SDXL ControlNet with the refiner hand-off, against scripts/fixtures/gen_sdxl_controlnet_refiner.py (diffusers 0.30.3:
 * StableDiffusionXLControlNetPipeline / StableDiffusionXLControlNetInpaintPipeline with denoising_end, then
 * tiny-sdxl-refiner's plain StableDiffusionXLImg2ImgPipeline / StableDiffusionXLInpaintPipeline with denoising_start):
 * txt2img at two switch points (one control window ending before the switch), inpaint on the 4-channel residual UNet
 * and on the 9-channel one with two controls. The control windows count the whole schedule (or strength slice), not
 * the steps the base runs.
 */
import { mkdirSync, mkdtempSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestFromOptions } from '../../src/cli/generate.js';
import { createEngine } from '../../src/engine/create-engine.js';
import type { PipelineOutput } from '../../src/engine/pipelines/types.js';
import { parseRequest, type GenerationRequestInput } from '../../src/queue/job.js';
import { controlCaseRequest, FIXTURE_MODELS, flatten, loadCases, maxAbsDiff, runCase, worstRatio, type CaseControl, type FixtureCase } from '../helpers/fixture-cases.js';

const XLCN = join(FIXTURE_MODELS, 'tiny-sdxl-controlnet');
const ATTACHED = [{ id: 'xl-edges', dir: join(XLCN, 'controlnet') }];

interface HandoffControlCase extends FixtureCase {
  base_model: string;
  base_unet_dir?: string;
  controls: (CaseControl & { scale_per_step: number[]; scale_per_step_if_cut_counted: number[]; keep_steps_counted: number })[];
  base: { timesteps: number[]; handoff_latents: unknown };
}

const CASES = loadCases('tiny-sdxl-controlnet-refiner') as HandoffControlCase[];

/** tiny-sdxl-inpaint with the UNet that takes residuals (the fixture stores only that unet/). */
function inpaint9Folder(): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'sdbot-xlcnref9-')), 'tiny-sdxl-inpaint-cn');
  mkdirSync(dir);
  const src = join(FIXTURE_MODELS, 'tiny-sdxl-inpaint');
  for (const e of readdirSync(src)) symlinkSync(e === 'unet' ? join(FIXTURE_MODELS, 'tiny-sdxl-inpaint-residual-unet', 'unet') : join(src, e), join(dir, e));
  return dir;
}

/** The engine's id of a case's base. */
const baseId = (c: HandoffControlCase): string => (c.base_unet_dir ? 'xlinp-cn' : c.base_model);

async function latentsOf(engine: Awaited<ReturnType<typeof createEngine>>, r: GenerationRequestInput): Promise<Float32Array> {
  let out: PipelineOutput | undefined;
  await engine.runJob(parseRequest(r), { onOutput: (o) => (out = o) });
  return out!.latents.data;
}

it('the generator covers txt2img at two switch points, a window ending before the switch, both inpaint UNets, batches of 2', () => {
  expect(CASES.map((c) => [c.pipeline, c['base_unet_in_channels'], c['denoising_start']])).toEqual([
    ['controlnet', 4, 0.8], ['controlnet', 4, 0.6], ['inpaint', 4, 0.8], ['inpaint', 9, 0.7],
  ]);
  expect(CASES.some((c) => c.controls.some((k) => k.control_guidance_end < (c['denoising_start'] as number)))).toBe(true);
  expect(CASES.filter((c) => c.batch_size === 2 && c.guidance_scale > 1)).toHaveLength(2);
  // Every case tells the two ways of counting the control window apart (the generator asserts it too).
  for (const c of CASES) expect(c.controls.map((k) => k.scale_per_step)).not.toEqual(c.controls.map((k) => k.scale_per_step_if_cut_counted));
});

describe('SDXL ControlNet + refiner hand-off reproduces diffusers', async () => {
  const engine = await createEngine();
  beforeAll(async () => {
    await engine.loadModel({ id: 'tiny-sdxl-controlnet', dir: XLCN });
    await engine.loadModel({ id: 'xlinp-cn', dir: inpaint9Folder(), controlnets: ATTACHED });
    await engine.loadModel({ id: 'tiny-sdxl-refiner', dir: join(FIXTURE_MODELS, 'tiny-sdxl-refiner') });
  });
  afterAll(() => engine.close());

  for (const c of CASES) {
    it(`${c.id}: latents and images`, async () => {
      const request = parseRequest(controlCaseRequest(c, baseId(c)));
      expect(request.refiner).toEqual({ model: 'tiny-sdxl-refiner', switchAt: c['denoising_start'] });
      const { result } = await runCase(engine, c, request);
      expect(result.notes.join(' ')).toMatch(/Refined by tiny-sdxl-refiner from \d+%/);
    });
  }

  it('the control changes the hand-off, and a window ending before the switch is not the same as no window', async () => {
    for (const c of CASES) {
      const r = controlCaseRequest(c, baseId(c));
      const plain = { ...r, kind: c.pipeline === 'controlnet' ? 'txt2img' as const : r.kind, controls: [] };
      expect(maxAbsDiff(await latentsOf(engine, r), await latentsOf(engine, plain)), c.id).toBeGreaterThan(1e-2);
    }
    // Counting the window over the 6 steps the base runs (off from step 3 on) is what end 0.3 of all 10 steps gives:
    // visibly off the reference, so the cases pin diffusers' count.
    const c = CASES.find((k) => k.id === 'sdxlcnref_s06_window_euler_a')!;
    const r = controlCaseRequest(c, baseId(c));
    const shrunk = { ...r, controls: r.controls!.map((k) => ({ ...k, end: 0.3 })) };
    expect(worstRatio(await latentsOf(engine, shrunk), flatten(c.outputs.latents), 2e-3, 1e-3)).toBeGreaterThan(1);
  });

  it('the single-control fields (sdbot generate --control-image …) with the bot\'s refiner field reproduce sdxlcnref_s08', async () => {
    // `sdbot generate` has no refiner option; the bot's --refiner sets the request's refiner field (switch 0.8 default).
    const c = CASES.find((k) => k.id === 'sdxlcnref_s08')!;
    const k = c.controls[0]!;
    const request = requestFromOptions({
      model: 'tiny-sdxl-controlnet', prompt: c.prompt, seed: String(c.seed), out: '/tmp', count: c.batch_size, steps: c.steps,
      cfg: c.guidance_scale, sampler: 'euler', width: c.width, height: c.height, controlImage: join(FIXTURE_MODELS, k.image),
      controlEnd: [k.control_guidance_end],
    });
    expect([request.kind, request.controlImage?.kind]).toEqual(['controlnet', 'file']);
    await runCase(engine, c, parseRequest({ ...request, refiner: { model: 'tiny-sdxl-refiner' } }));
  });

  it('refuses ControlNet img2img with a refiner, readably', async () => {
    const c = CASES.find((k) => k.pipeline === 'inpaint' && !k.base_unet_dir)!;
    await expect(engine.runJob(parseRequest({ ...controlCaseRequest(c, 'tiny-sdxl-controlnet'), kind: 'img2img', maskImage: null })))
      .rejects.toThrow(/SDXL ControlNet img2img does not go with a refiner hand-off \(only txt2img and inpaint do\)/);
  });
});
