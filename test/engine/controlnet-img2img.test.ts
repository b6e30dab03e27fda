/**
 * ControlNet with img2img and inpaint (4-channel UNet: the legacy blend), and guess mode, against the references of
 * scripts/fixtures/gen_controlnet_img2img.py (diffusers 0.30.3's StableDiffusionControlNetImg2ImgPipeline,
 * StableDiffusionControlNetInpaintPipeline and StableDiffusionControlNetPipeline(guess_mode=True)).
 */
import { mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/create-engine.js';
import { readPngParameters } from '../../src/engine/image/index.js';
import { controlGuessMode, guessModeScales } from '../../src/engine/controlnet.js';
import type { ModelGraph } from '../../src/engine/onnx/session.js';
import { requestFromOptions } from '../../src/cli/generate.js';
import { parseRequest, type GenerationRequestInput } from '../../src/queue/job.js';
import { caseRequest, controlCaseRequest, FIXTURE_MODELS, loadCases, maxAbsDiff, runCase, type FixtureCase } from '../helpers/fixture-cases.js';

const CN2 = join(FIXTURE_MODELS, 'tiny-sd15-controlnet-2');



const allCases = loadCases('tiny-sd15-controlnet-img2img');
/** Cases on tiny-sd15-controlnet (4-channel UNet); the others run tiny-sd15-inpaint with its residual-input UNet. */
const cases = allCases.filter((c) => c.model === 'tiny-sd15-controlnet');
const inpaint9 = allCases.filter((c) => c.model === 'tiny-sd15-inpaint');
const byId = (id: string) => cases.find((x) => x.id === id)!;

describe('ControlNet img2img, inpaint and guess mode reproduce diffusers', async () => {
  const engine = await createEngine();
  beforeAll(async () => {
    await engine.loadModel({ id: 'cn', dir: join(FIXTURE_MODELS, 'tiny-sd15-controlnet'), controlnets: [{ id: 'tiny-sd15-controlnet-2', dir: CN2 }] });
  });
  afterAll(() => engine.close());

  it('has the cases the generator promises', () => {
    expect(cases.map((c) => c.pipeline).sort()).toEqual(['img2img', 'img2img', 'img2img', 'inpaint', 'inpaint', 'txt2img', 'txt2img']);
    expect(cases.filter((c) => c['guess_mode'] === true)).toHaveLength(3);
    expect(inpaint9.map((c) => [c.pipeline, c['unet_in_channels'], c['guess_mode']])).toEqual([['inpaint', 9, false], ['inpaint', 9, true]]);
  });

  for (const c of cases) {
    it(`${c.id}: latents and images`, async () => {
      const { result } = await runCase(engine, c, parseRequest(controlCaseRequest(c, 'cn')));
      // The ControlNet extension's unit text says guess mode where it was on.
      expect(readPngParameters(result.images[0]!.png)?.includes('Guess Mode: True')).toBe(c['guess_mode'] === true);
    });
  }

  it('the control changes img2img and inpaint, and guess mode changes the picture (the cases are not plain runs)', async () => {
    const latents: Float32Array[] = [];
    const run = (r: GenerationRequestInput) => engine.runJob(parseRequest({ ...r, count: 1 }), { onOutput: (o) => latents.push(o.latents.data) });
    for (const id of ['cnimg_euler_a', 'cninp_legacy_euler_a']) {
      const r = controlCaseRequest(byId(id), 'cn');
      await run(r);
      await run({ ...r, controls: [] });
    }
    const g = controlCaseRequest(byId('cnguess_euler_a'), 'cn');
    await run(g);
    await run({ ...g, controlGuessMode: false });
    for (const k of [0, 2, 4]) expect(maxAbsDiff(latents[k]!, latents[k + 1]!)).toBeGreaterThan(1e-2);
  });

  it('the single-control fields on an img2img job are the same job as the list form (what the bot and CLI send)', async () => {
    const r = controlCaseRequest(byId('cnimg_euler_a'), 'cn');
    const ctl = r.controls![0]!;
    const latents: Float32Array[] = [];
    const run = (x: GenerationRequestInput) => engine.runJob(parseRequest({ ...x, count: 1 }), { onOutput: (o) => latents.push(o.latents.data) });
    await run(r);
    await run({ ...r, controls: [], controlImage: ctl.image, controlScale: ctl.scale ?? 1 });
    expect(maxAbsDiff(latents[0]!, latents[1]!)).toBe(0);
  });

  it('refuses what does not fit: a "controlnet" job with an init image, guess mode without a control, controls on depth2img', async () => {
    const r = controlCaseRequest(byId('cnimg_euler_a'), 'cn');
    await expect(engine.runJob(parseRequest({ ...r, kind: 'controlnet' })))
      .rejects.toThrow(/A "controlnet" job starts from noise: to start from a picture, send an img2img \(or inpaint\) job with the control image/);
    await expect(engine.runJob(parseRequest({ ...r, controls: [], controlGuessMode: true })))
      .rejects.toThrow(/Guess mode is a ControlNet setting: add a control image/);
    await expect(engine.runJob(parseRequest({ ...r, kind: 'depth2img' })))
      .rejects.toThrow(/ControlNet controls go with txt2img, img2img and inpaint jobs, not depth2img/);
    expect(() => parseRequest({ ...r, controlGuessMode: 'yes' })).toThrow();
  });
});

describe('ControlNet inpaint with a 9-channel inpaint UNet reproduces diffusers (the ControlNet sees the 4 latent channels)', async () => {
  // tiny-sd15-inpaint with the UNet that takes residuals (the fixture stores only that unet/), ControlNet attached.
  const dir = join(mkdtempSync(join(tmpdir(), 'sdbot-cninp9-')), 'tiny-sd15-inpaint-cn');
  mkdirSync(dir);
  const src = join(FIXTURE_MODELS, 'tiny-sd15-inpaint');
  for (const e of readdirSync(src)) symlinkSync(e === 'unet' ? join(FIXTURE_MODELS, 'tiny-sd15-inpaint-residual-unet', 'unet') : join(src, e), join(dir, e));
  const engine = await createEngine();
  beforeAll(async () => {
    await engine.loadModel({ id: 'cn', dir, controlnets: [{ id: 'tiny-sd15-controlnet-2', dir: CN2 }] });
  });
  afterAll(() => engine.close());

  for (const c of inpaint9) {
    it(`${c.id}: latents and images`, async () => {
      await runCase(engine, c, parseRequest(controlCaseRequest(c, 'cn')));
    });
  }

  it('the control changes the inpainting', async () => {
    const latents: Float32Array[] = [];
    const r = controlCaseRequest(inpaint9[0]!, 'cn');
    for (const x of [r, { ...r, controls: [] }]) await engine.runJob(parseRequest({ ...x, count: 1 }), { onOutput: (o) => latents.push(o.latents.data) });
    expect(maxAbsDiff(latents[0]!, latents[1]!)).toBeGreaterThan(1e-2);
  });
});

describe('guess mode rules', () => {
  it('scales residual k by torch.logspace(-1, 0, K+1)[k] × scale (values from torch 1.13), the mid residual by the scale', () => {
    // torch.logspace(-1, 0, 13) as float32 (a real SD 1.5 ControlNet has 12 down residuals).
    const torch13 = [0.10000000149011612, 0.12115276604890823, 0.14677992463111877, 0.17782793939113617, 0.2154434621334076,
      0.26101571321487427, 0.3162277638912201, 0.3831186890602112, 0.46415889263153076, 0.5623413324356079, 0.6812920570373535,
      0.825404167175293, 1.0];
    const names = [...Array.from({ length: 12 }, (_, k) => `down_block_${11 - k}`), 'mid_block'];
    const s = guessModeScales(names, 1);
    expect(Array.from({ length: 12 }, (_, k) => s.get(`down_block_${k}`))).toEqual(torch13.slice(0, 12));
    expect(s.get('mid_block')).toBe(1);
    const half = guessModeScales(['down_block_0', 'down_block_1', 'mid_block'], 0.7);
    expect([half.get('down_block_0'), half.get('down_block_1'), half.get('mid_block')])
      .toEqual([Math.fround(0.10000000149011612 * Math.fround(0.7)), Math.fround(0.3162277638912201 * Math.fround(0.7)), Math.fround(0.7)]);
  });

  it('a first ControlNet whose config pools its conditions forces guess mode (diffusers), a later one does not', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sdbot-pool-'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ _class_name: 'ControlNetModel', global_pool_conditions: true }));
    symlinkSync(join(CN2, 'model.onnx'), join(dir, 'model.onnx'));
    const pooled = { graph: { path: join(dir, 'model.onnx') } as ModelGraph };
    const plain = { graph: { path: join(CN2, 'model.onnx') } as ModelGraph };
    expect(controlGuessMode([pooled, plain], false)).toEqual({ on: true, pooled: [true, false] });
    expect(controlGuessMode([plain, pooled], false)).toEqual({ on: false, pooled: [false, true] });
    expect(controlGuessMode([plain], true)).toEqual({ on: true, pooled: [false] });
  });
});

describe('sdbot generate: --init-image / --mask with --control-image, --control-guess-mode', () => {
  const model = join(FIXTURE_MODELS, 'tiny-sd15-controlnet');
  it('an init image with a control image is an img2img job carrying the control; a mask makes it inpaint', () => {
    const base = { model, prompt: 'a cat', seed: '1', out: '/tmp', controlImage: join(FIXTURE_MODELS, 'edges_64.png') };
    const img = requestFromOptions({ ...base, initImage: join(FIXTURE_MODELS, 'init_64.png'), strength: 0.6 });
    expect([img.kind, img.controlImage?.kind, img.strength, img.controlGuessMode]).toEqual(['img2img', 'file', 0.6, false]);
    const inp = requestFromOptions({ ...base, initImage: join(FIXTURE_MODELS, 'init_64.png'), mask: join(FIXTURE_MODELS, 'mask_64.png'), controlGuessMode: true });
    expect([inp.kind, inp.strength, inp.controlGuessMode]).toEqual(['inpaint', 1, true]);
    expect(requestFromOptions(base).kind).toBe('controlnet');
    expect(() => requestFromOptions({ model, prompt: 'a cat', seed: '1', out: '/tmp', controlGuessMode: true })).toThrow(/--control-guess-mode needs --control-image/);
  });
});
