/**
 * SD3 ControlNet against diffusers' StableDiffusion3ControlNetPipeline (tiny-sd3-controlnet.cases.json), through the
 * engine path `sdbot generate` takes: control latents, final latents (2e-3 + 1e-3·|ref|) and images (2/255).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/create-engine.js';
import { loadModel } from '../../src/engine/loaded-model.js';
import { controlLatents } from '../../src/engine/pipelines/sd3-controlnet.js';
import type { PipelineOutput } from '../../src/engine/pipelines/types.js';
import { resolveJob } from '../../src/engine/resolve-job.js';
import { TorchGenerator } from '../../src/engine/sampling/torch-rng.js';
import { parseRequest } from '../../src/queue/job.js';
import { caseRequest, FIXTURE_MODELS, flatten, loadCases, maxAbsDiff, rawRgb, runCase, worstRatio } from '../helpers/fixture-cases.js';

const MODEL = 'tiny-sd3-controlnet';
const ROOT = join(import.meta.dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'sdbot-sd3cn-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('SD3 ControlNet reproduces diffusers', async () => {
  const engine = await createEngine();
  beforeAll(async () => {
    await engine.loadModel({ id: MODEL, dir: join(FIXTURE_MODELS, MODEL) });
  });
  afterAll(() => engine.close());

  for (const c of loadCases(MODEL)) {
    it(`${c.id}: latents and images`, async () => {
      await runCase(engine, c);
    });
  }

  it('control latents: VAE sample of the [-1, 1] control image, one draw of the seed-initialised RNG, × scaling_factor', async () => {
    const model = engine.getModel(MODEL)!;
    for (const c of loadCases(MODEL).filter((x) => x['controlnet_cond'])) {
      const { params } = await resolveJob(model, parseRequest(caseRequest(c)));
      const rows = (c['controlnet_cond_shape'] as number[])[0]!;
      const got = await controlLatents(model.vaeEncoder!, params.controls![0]!.image, rows, new TorchGenerator(BigInt(c.seed)), model.info.scalingFactor);
      expect(got.dims).toEqual(c['controlnet_cond_shape']);
      expect(worstRatio(got.data, flatten(c['controlnet_cond']), 1e-4, 1e-4)).toBeLessThanOrEqual(1);
    }
  });

  it('refuses img2img, skip-layer guidance and guess mode together with an SD3 ControlNet', async () => {
    const c = loadCases(MODEL).find((x) => x.id === 'sd3cn_edges')!;
    const req = caseRequest(c);
    await expect(engine.runJob(parseRequest({ ...req, kind: 'img2img', initImage: req.controlImage }), {})).rejects.toThrow(/text only/);
    await expect(engine.runJob(parseRequest({ ...req, slg: { layers: [1], scale: 2.5, start: 0.01, end: 0.2 } }), {})).rejects.toThrow(/Skip-layer guidance/);
    await expect(engine.runJob(parseRequest({ ...req, controlGuessMode: true }), {})).rejects.toThrow(/guess mode is supported for SD 1.x \/ 2.x and SDXL models only, not .* \(sd3\)/);
  });
});

describe('SD3 ControlNet folder checks', () => {
  it('a transformer with residual inputs but no controlnet/ runs with zero residuals (= StableDiffusion3Pipeline)', async () => {
    const dir = join(tmp, 'sd3-residual-inputs-only');
    mkdirSync(dir);
    for (const entry of readdirSync(join(FIXTURE_MODELS, MODEL))) {
      if (entry !== 'controlnet') symlinkSync(join(FIXTURE_MODELS, MODEL, entry), join(dir, entry));
    }
    const engine = await createEngine();
    try {
      await engine.loadModel({ id: 'no-cn', dir });
      const c = loadCases(MODEL).find((x) => x.id === 'sd3cn_no_control')!;
      let out: PipelineOutput | undefined;
      await engine.runJob(parseRequest({ ...caseRequest(c), model: 'no-cn' }), { onOutput: (o) => (out = o) });
      expect(worstRatio(out!.latents.data, flatten(c.outputs.latents), 2e-3, 1e-3)).toBeLessThanOrEqual(1);
    } finally {
      await engine.close();
    }
  });

  it('a controlnet/ next to a transformer without residual inputs fails at load, naming the transformer', async () => {
    const dir = join(tmp, 'sd3-without-residuals');
    mkdirSync(dir);
    for (const entry of readdirSync(join(FIXTURE_MODELS, 'tiny-sd3'))) symlinkSync(join(FIXTURE_MODELS, 'tiny-sd3', entry), join(dir, entry));
    symlinkSync(join(FIXTURE_MODELS, MODEL, 'controlnet'), join(dir, 'controlnet'));
    await expect(loadModel(dir)).rejects.toThrow(/transformer\/model\.onnx: this folder has a controlnet\/ but the transformer has no "block_controlnet_hidden_states\.N" inputs/);
  });
});

describe('sdbot generate with an SD3 ControlNet', () => {
  it('--control-image/--control-scale/--control-start/--control-end reproduce the windowed reference', async () => {
    const c = loadCases(MODEL).find((x) => x.id === 'sd3cn_wide_no_t5_window')!;
    const out = join(tmp, 'cli');
    const { stdout } = await promisify(execFile)(process.execPath, [
      join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(ROOT, 'src', 'cli.ts'), 'generate',
      '--model', join(FIXTURE_MODELS, MODEL), '--prompt', c.prompt, '--negative', c.negative_prompt!, '--seed', String(c.seed),
      '--steps', String(c.steps), '--cfg', String(c.guidance_scale), '--width', String(c.width), '--height', String(c.height),
      '--no-t5', '--control-image', join(FIXTURE_MODELS, 'edges_64.png'), '--control-scale', String(c['controlnet_conditioning_scale']),
      '--control-start', String(c['control_guidance_start']), '--control-end', String(c['control_guidance_end']), '--out', out,
    ], { cwd: ROOT });
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as { files: string[] };
    const ours = await rawRgb(summary.files[0]!);
    const ref = await rawRgb(join(FIXTURE_MODELS, `${c.id}_0.png`));
    expect(maxAbsDiff(ours.data, ref.data)).toBeLessThanOrEqual(2);
  });
});
