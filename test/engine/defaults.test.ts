/** Per-family defaults come from the folder: SD3.5 is told from SD3 by its transformer config. */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultsFor, isSd35 } from '../../src/engine/defaults.js';
import { readModelInfo } from '../../src/engine/model-folder.js';
import { requestFromOptions } from '../../src/cli/generate.js';
import { FIXTURE_MODELS } from '../helpers/fixture-cases.js';

const tmp = mkdtempSync(join(tmpdir(), 'sdbot-defaults-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('model defaults', () => {
  it('SD3 keeps its folder scheduler; an SD3.5 transformer config gets DPM++ 2M, 40 steps, CFG 4.5', () => {
    const sd3 = readModelInfo(join(FIXTURE_MODELS, 'tiny-sd3'));
    expect(isSd35(sd3)).toBe(false);
    expect(defaultsFor(sd3)).toEqual({ steps: 28, guidance: 7.0, sampler: null });
    const dir = join(tmp, 'tiny-sd35');
    cpSync(join(FIXTURE_MODELS, 'tiny-sd3'), dir, { recursive: true });
    const cfgPath = join(dir, 'transformer', 'config.json');
    writeFileSync(cfgPath, JSON.stringify({ ...JSON.parse(readFileSync(cfgPath, 'utf8')), qk_norm: 'rms_norm' }));
    expect(defaultsFor(readModelInfo(dir))).toEqual({ steps: 40, guidance: 4.5, sampler: 'flow_dpmpp_2m' });
  });

  it('SD1.5 and SDXL defaults', () => {
    expect(defaultsFor(readModelInfo(join(FIXTURE_MODELS, 'tiny-sd15'))).guidance).toBe(7.5);
    expect(defaultsFor(readModelInfo(join(FIXTURE_MODELS, 'tiny-sdxl'))).guidance).toBe(5.0);
  });

  it('generate maps --no-t5 and --max-sequence-length onto the request', () => {
    const r = requestFromOptions({ model: 'x/tiny-sd3', prompt: 'p', out: '/tmp', t5: false, maxSequenceLength: 77, seed: '1' });
    expect(r).toMatchObject({ model: 'tiny-sd3', t5: false, maxSequenceLength: 77, seed: '1' });
    expect(requestFromOptions({ model: 'm', prompt: 'p', out: '/tmp', seed: '1' })).toMatchObject({ t5: true, maxSequenceLength: 256 });
  });
});

describe('generate flags', () => {
  it('maps the image modes and conditioning flags onto the request', () => {
    const r = requestFromOptions({
      model: 'm', prompt: 'p', out: '/tmp', seed: '1', mode: 'depth', initImage: '/a.png', depthMap: '/d.png',
      originalSize: { width: 96, height: 128 }, crop: { top: 8, left: 16 }, targetSize: { width: 64, height: 64 },
    });
    expect(r).toMatchObject({ kind: 'depth2img', depthImage: { kind: 'file', path: '/d.png' }, originalSize: { width: 96, height: 128 }, cropTopLeft: { top: 8, left: 16 } });
    const c = requestFromOptions({ model: 'm', prompt: 'p', out: '/tmp', seed: '1', controlImage: '/e.png', controlScale: 0.5, controlEnd: 0.6 });
    expect(c).toMatchObject({ kind: 'controlnet', controlScale: 0.5, controlStart: 0, controlEnd: 0.6 });
  });
});

describe('LCM img2img', () => {
  it('draws its schedule from the strength (all steps run) instead of slicing the txt2img schedule', async () => {
    const { createEngine } = await import('../../src/engine/create-engine.js');
    const { parseRequest } = await import('../../src/queue/job.js');
    const engine = await createEngine();
    await engine.loadModel({ id: 'sd15', dir: join(FIXTURE_MODELS, 'tiny-sd15') });
    const totals: number[] = [];
    const init = { kind: 'file' as const, path: join(FIXTURE_MODELS, 'init_64.png') };
    await engine.runJob(parseRequest({ model: 'sd15', kind: 'img2img', prompt: 'x', seed: '1', steps: 4, strength: 0.5, sampler: 'lcm', guidance: 1.5, initImage: init }), {
      onProgress: (e) => totals.push(e.total),
    });
    await engine.runJob(parseRequest({ model: 'sd15', kind: 'img2img', prompt: 'x', seed: '1', steps: 4, strength: 0.5, sampler: 'euler', guidance: 1.5, initImage: init }), {
      onProgress: (e) => totals.push(e.total),
    });
    expect(totals[0]).toBe(4);
    expect(totals.at(-1)).toBe(2);
    await engine.close();
  });
});
