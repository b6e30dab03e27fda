/**
 * Several ControlNets at once (diffusers' MultiControlNetModel), ControlNets from outside the model folder, and the
 * depth preprocessor, against the references of scripts/fixtures/gen_multi_controlnet.py.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/create-engine.js';
import { loadModel } from '../../src/engine/loaded-model.js';
import { depthControlImage } from '../../src/engine/control-image.js';
import { decodeImage } from '../../src/engine/image/index.js';
import { parseModelsFile } from '../../src/engine/models-file.js';
import { modelInfosFromConfig } from '../../src/bot/core/model-info.js';
import { modelEntry, requestFromOptions } from '../../src/cli/generate.js';
import type { PipelineOutput } from '../../src/engine/pipelines/types.js';
import { parseRequest, type GenerationRequestInput } from '../../src/queue/job.js';
import {
  caseRequest, controlCaseRequest, fixtureFile, FIXTURE_MODELS, flatten, loadCases, maxAbsDiff, rawRgb, runCase, worstRatio, type CaseControl,
  type FixtureCase,
} from '../helpers/fixture-cases.js';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';

const CN2 = join(FIXTURE_MODELS, 'tiny-sd15-controlnet-2');
const BAD = join(FIXTURE_MODELS, 'tiny-controlnet-mismatched');
const DEPTH = join(FIXTURE_MODELS, 'tiny-sd2-depth');



describe('several ControlNets at once reproduce diffusers (MultiControlNetModel)', async () => {
  const engine = await createEngine();
  beforeAll(async () => {
    await engine.loadModel({
      id: 'cn', dir: join(FIXTURE_MODELS, 'tiny-sd15-controlnet'),
      controlnets: [{ id: 'tiny-sd15-controlnet-2', dir: CN2 }], depthEstimator: DEPTH,
    });
  });
  afterAll(() => engine.close());

  for (const c of loadCases('tiny-sd15-controlnet-multi')) {
    it(`${c.id}: latents and images`, async () => {
      await runCase(engine, c, parseRequest(controlCaseRequest(c, 'cn')));
    });
  }

  it('the single-control fields and the list form are the same job; the second ControlNet changes the picture', async () => {
    const c = loadCases('tiny-sd15-controlnet-multi').find((x) => x.id === 'mcn_euler_a')!;
    const [first, second] = controlCaseRequest(c, 'cn').controls!;
    const latents: Float32Array[] = [];
    const run = (r: GenerationRequestInput) => engine.runJob(parseRequest({ ...r, count: 1 }), { onOutput: (o) => latents.push(o.latents.data) });
    const base = controlCaseRequest(c, 'cn');
    await run({ ...base, controls: [first!] });
    await run({ ...base, controls: [], controlImage: first!.image, controlScale: first!.scale ?? 1 });
    await run({ ...base, controls: [second!], controlImage: first!.image });
    expect(maxAbsDiff(latents[0]!, latents[1]!)).toBe(0);
    expect(maxAbsDiff(latents[0]!, latents[2]!)).toBeGreaterThan(1e-2);
  });

  it('depth preprocessing makes the reference depth picture (controlnet_aux Midas style) from the estimator', async () => {
    const model = engine.getModel('cn')!;
    const ours = await depthControlImage(model, await decodeImage(readFileSync(join(FIXTURE_MODELS, 'init_64.png'))));
    const ref = await rawRgb(join(FIXTURE_MODELS, 'init_64_depth_control.png'));
    expect([ours.width, ours.height]).toEqual([ref.width, ref.height]);
    // Truncation to uint8: a value within float rounding of a level may land one level off (32 are within 1e-4).
    expect(maxAbsDiff(ours.rgb, ref.data)).toBeLessThanOrEqual(1);
    let off = 0;
    for (let i = 0; i < ref.data.length; i++) if (ours.rgb[i] !== ref.data[i]) off++;
    expect(off / ref.data.length).toBeLessThan(1e-3);
  });

  it('names the control at fault: unknown ControlNet id, start after end, too many controls', async () => {
    const c = loadCases('tiny-sd15-controlnet-multi').find((x) => x.id === 'mcn_euler_a')!;
    const base = controlCaseRequest(c, 'cn');
    const ctl = base.controls![0]!;
    await expect(engine.runJob(parseRequest({ ...base, controls: [ctl, { ...ctl, controlnet: 'canny-xl' }] })))
      .rejects.toThrow(/Control 2: ControlNet "canny-xl" is not attached to tiny-sd15-controlnet \(attached: tiny-sd15-controlnet-2\)/);
    await expect(engine.runJob(parseRequest({ ...base, controls: [{ ...ctl, start: 0.6, end: 0.5 }] }))).rejects.toThrow(/start must come before its end/);
    // The list holds at most 3; with the single-control fields too, the engine counts both.
    expect(() => parseRequest({ ...base, controls: [ctl, ctl, ctl, ctl] })).toThrow();
    await expect(engine.runJob(parseRequest({ ...base, controlImage: fixtureFile('edges_64.png'), controls: [ctl, ctl, ctl] })))
      .rejects.toThrow(/At most 3 ControlNet controls in one job \(got 4\)/);
  });
});

describe('ControlNets outside the model folder: checked against the UNet at load time', () => {
  it('refuses a ControlNet whose residuals do not fit, naming both tensors', async () => {
    await expect(loadModel(join(FIXTURE_MODELS, 'tiny-sd15-controlnet'), ['cpu'], { controlnets: [{ id: 'odd', dir: BAD }] }))
      .rejects.toThrow(/ControlNet "odd" \(.*tiny-controlnet-mismatched\) does not fit tiny-sd15-controlnet: its "down_block_1" has 16 channels, the UNet's "down_block_1" takes 32/);
  });

  it('refuses a ControlNet for a UNet exported without residual inputs', async () => {
    await expect(loadModel(join(FIXTURE_MODELS, 'tiny-sd15'), ['cpu'], { controlnets: [{ id: 'cn2', dir: CN2 }] }))
      .rejects.toThrow(/tiny-sd15: its UNet .* takes no ControlNet residuals/);
  });

  it('a UNet export without a controlnet/ of its own takes the first attached ControlNet for the single-control fields', async () => {
    // A base folder with residual inputs and no controlnet/, as when ControlNets are published apart from the model.
    const dir = join(mkdtempSync(join(tmpdir(), 'sdbot-cn-')), 'sd15-residual-unet');
    mkdirSync(dir);
    const src = join(FIXTURE_MODELS, 'tiny-sd15-controlnet');
    for (const e of readdirSync(src)) if (e !== 'controlnet') symlinkSync(join(src, e), join(dir, e));
    const engine = await createEngine();
    try {
      await engine.loadModel({ id: 'bare', dir, controlnets: [{ id: 'cn2', dir: CN2 }], depthEstimator: DEPTH });
      const m = engine.getModel('bare')!;
      expect(m.controlnet).toBeNull();
      expect(m.defaultControlNet).toBe(m.controlnets.get('cn2'));
      const c = loadCases('tiny-sd15-controlnet-multi').find((x) => x.id === 'cn2_single_depth')!;
      const k = (c['controls'] as CaseControl[])[0]!;
      let out: PipelineOutput | undefined;
      await engine.runJob(parseRequest({
        ...caseRequest(c), model: 'bare', controlImage: fixtureFile(k.image), controlPreprocess: k.preprocess,
        controlScale: k.conditioning_scale, controlStart: k.control_guidance_start, controlEnd: k.control_guidance_end,
      }), { onOutput: (o) => (out = o) });
      expect(worstRatio(out!.latents.data, flatten(c.outputs.latents), 2e-3, 1e-3)).toBeLessThanOrEqual(1);
    } finally {
      await engine.close();
    }
  });

  it('depth preprocessing without an estimator is a readable bad request', async () => {
    const engine = await createEngine();
    try {
      await engine.loadModel({ id: 'cn', dir: join(FIXTURE_MODELS, 'tiny-sd15-controlnet') });
      await expect(engine.runJob(parseRequest({
        kind: 'controlnet', model: 'cn', prompt: 'x', seed: '1', steps: 2, width: 64, height: 64,
        controlImage: fixtureFile('init_64.png'), controlPreprocess: 'depth',
      }))).rejects.toThrow(/Depth preprocessing needs a depth estimator, and tiny-sd15-controlnet has none: .*"depthEstimator"/);
    } finally {
      await engine.close();
    }
  });
});

describe('where ControlNets come from: models file and command line', () => {
  it('models file: controlnets as folders or {id, dir}, relative to the file; ids must differ', () => {
    const cfg = parseModelsFile({
      models: [{ dir: 'sd15', controlnets: ['cn/canny', { id: 'depth', dir: '/abs/cn-depth' }], depthEstimator: 'sd2-depth' }],
    }, '/models');
    expect(cfg.models[0]).toMatchObject({
      controlnets: [{ id: 'canny', dir: '/models/cn/canny' }, { id: 'depth', dir: '/abs/cn-depth' }],
      depthEstimator: '/models/sd2-depth',
    });
    expect(() => parseModelsFile({ models: [{ dir: 'sd15', controlnets: ['a/cn', 'b/cn'] }] }, '/m')).toThrow(/two ControlNets with the id "cn"/);
  });

  it('the bot sends ControlNet jobs to a model with ControlNets attached in the models file', () => {
    const base = { id: 'sd15', dir: join(FIXTURE_MODELS, 'tiny-sd15'), load: true };
    const [plain, attached] = modelInfosFromConfig({ models: [base, { ...base, id: 'sd15-cn', controlnets: [{ id: 'cn2', dir: CN2 }] }], defaultModel: 'sd15' });
    expect(plain).toMatchObject({ id: 'sd15', role: 'base' });
    expect(attached).toMatchObject({ id: 'sd15-cn', role: 'controlnet' });
  });

  it('sdbot generate: repeatable control options, given once for all or once per control image', () => {
    const o = {
      model: 'm/tiny', prompt: 'p', out: '/tmp', seed: '1',
      controlImage: ['/e.png', '/photo.png'], controlnet: ['model', '/cn/sd15-depth'], control: ['none' as const, 'depth' as const],
      controlScale: 0.8, controlEnd: [1, 0.6], depthEstimator: '/m/sd2-depth',
    };
    const r = requestFromOptions(o);
    expect(r.kind).toBe('controlnet');
    expect(r.controlImage).toBeNull();
    expect(r.controls).toEqual([
      { image: { kind: 'file', path: '/e.png' }, controlnet: null, preprocess: 'none', scale: 0.8, start: 0, end: 1 },
      { image: { kind: 'file', path: '/photo.png' }, controlnet: 'sd15-depth', preprocess: 'depth', scale: 0.8, start: 0, end: 0.6 },
    ]);
    expect(modelEntry(o, 'tiny')).toMatchObject({ controlnets: [{ id: 'sd15-depth', dir: '/cn/sd15-depth' }], depthEstimator: '/m/sd2-depth' });
    expect(() => requestFromOptions({ ...o, controlScale: [1, 2, 3] })).toThrow(/--control-scale is given 3 times for 2 --control-image/);
    expect(() => requestFromOptions({ ...o, controlImage: undefined })).toThrow(/--controlnet needs --control-image/);
    expect(() => requestFromOptions({ ...o, controlImage: ['/a', '/b', '/c', '/d'] })).toThrow(/at most 3/);
  });
});
