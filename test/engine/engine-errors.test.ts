/** The engine's error paths: broken model folders and bad requests get messages naming the file, tensor or limit. */
import { cpSync, mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/create-engine.js';
import { BadRequestError, parseRequest } from '../../src/queue/job.js';
import { FIXTURE_MODELS } from '../helpers/fixture-cases.js';

const SD15 = join(FIXTURE_MODELS, 'tiny-sd15');
const tmp = mkdtempSync(join(tmpdir(), 'sdbot-errors-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function brokenCopy(name: string, breakIt: (dir: string) => void): string {
  const dir = join(tmp, name);
  cpSync(SD15, dir, { recursive: true });
  breakIt(dir);
  return dir;
}

describe('model folder errors', () => {
  it('names a missing folder', async () => {
    const engine = await createEngine();
    await expect(engine.loadModel({ id: 'x', dir: join(tmp, 'nope') })).rejects.toThrow(/does not exist/);
  });

  it('names the missing model_index.json', async () => {
    const dir = brokenCopy('no-index', (d) => rmSync(join(d, 'model_index.json')));
    const engine = await createEngine();
    await expect(engine.loadModel({ id: 'x', dir })).rejects.toThrow(/missing file .*model_index\.json/);
  });

  it('names a missing unet', async () => {
    const dir = brokenCopy('no-unet', (d) => rmSync(join(d, 'unet'), { recursive: true }));
    const engine = await createEngine();
    await expect(engine.loadModel({ id: 'x', dir })).rejects.toThrow(/missing the unet\/ folder/);
  });

  it('names the unexpected tensor when a graph has the wrong inputs', async () => {
    const dir = brokenCopy('wrong-unet', (d) => copyFileSync(join(d, 'text_encoder', 'model.onnx'), join(d, 'unet', 'model.onnx')));
    const engine = await createEngine();
    await expect(engine.loadModel({ id: 'x', dir })).rejects.toThrow(/unet[\\/]model\.onnx: expected an input named "sample", found input_ids/);
  });

  it('names a corrupt onnx file', async () => {
    const dir = brokenCopy('corrupt', (d) => writeFileSync(join(d, 'vae_decoder', 'model.onnx'), 'not onnx'));
    const engine = await createEngine();
    await expect(engine.loadModel({ id: 'x', dir })).rejects.toThrow(/cannot load .*vae_decoder[\\/]model\.onnx/);
  });

  it('names a broken config', async () => {
    const dir = brokenCopy('bad-config', (d) => writeFileSync(join(d, 'scheduler', 'scheduler_config.json'), '{oops'));
    const engine = await createEngine();
    await expect(engine.loadModel({ id: 'x', dir })).rejects.toThrow(/cannot read .*scheduler_config\.json/);
  });
});

describe('request errors', async () => {
  const engine = await createEngine();
  await engine.loadModel({ id: 'tiny-sd15', dir: SD15 });
  afterAll(() => engine.close());
  const base = { model: 'tiny-sd15', prompt: 'a cat', seed: '1', steps: 2 };

  it('refuses a size that is not a multiple of 8', async () => {
    const p = engine.runJob(parseRequest({ ...base, width: 60, height: 64 }));
    await expect(p).rejects.toBeInstanceOf(BadRequestError);
    await expect(p).rejects.toThrow(/multiples of 8/);
  });

  it('refuses an unknown model', async () => {
    await expect(engine.runJob(parseRequest({ ...base, model: 'sdxl' }))).rejects.toThrow(/Model "sdxl" is not loaded/);
  });

  it('refuses a file that is not an image', async () => {
    const bogus = join(tmp, 'not-an-image.png');
    writeFileSync(bogus, '%PDF-1.4 this is a pdf');
    const p = engine.runJob(parseRequest({ ...base, kind: 'img2img', initImage: { kind: 'file', path: bogus } }));
    await expect(p).rejects.toBeInstanceOf(BadRequestError);
  });

  it('refuses a mask of other proportions than the image', async () => {
    const sharp = (await import('sharp')).default;
    const wide = join(tmp, 'wide-mask.png');
    await sharp({ create: { width: 96, height: 48, channels: 3, background: '#fff' } }).png().toFile(wide);
    const p = engine.runJob(parseRequest({
      ...base, kind: 'inpaint', width: 64, height: 64, initImage: { kind: 'file', path: join(FIXTURE_MODELS, 'init_64.png') }, maskImage: { kind: 'file', path: wide },
    }));
    await expect(p).rejects.toBeInstanceOf(BadRequestError);
    await expect(p).rejects.toThrow(/mask is 96×48 but the image is 64×64/);
  });

  it('refuses img2img without an image', async () => {
    await expect(engine.runJob(parseRequest({ ...base, kind: 'img2img' }))).rejects.toThrow(/needs an image/);
  });

  it('refuses an oversized request', async () => {
    await expect(engine.runJob(parseRequest({ ...base, width: 4096, height: 4096 }))).rejects.toThrow(/too large/);
  });

  it('refuses skip-layer guidance on a transformer export without a skip_layers input', async () => {
    const e = await createEngine();
    await e.loadModel({ id: 'tiny-sd3', dir: join(FIXTURE_MODELS, 'tiny-sd3') });
    const p = e.runJob(parseRequest({ model: 'tiny-sd3', prompt: 'x', seed: '1', steps: 2, slg: { layers: [1] } }));
    await expect(p).rejects.toThrow(/no skip_layers input/);
    await e.close();
  });

  it('stops between steps when cancelled', async () => {
    const ac = new AbortController();
    let steps = 0;
    const p = engine.runJob(parseRequest({ ...base, steps: 10 }), {
      signal: ac.signal,
      onProgress: (e) => {
        steps = e.step;
        if (e.step === 3) ac.abort();
      },
    });
    await expect(p).rejects.toThrow(/cancelled/);
    expect(steps).toBe(3);
  });

  it('reports progress for every step, with previews when asked', async () => {
    const events: { step: number; total: number; preview?: Uint8Array }[] = [];
    await engine.runJob(parseRequest({ ...base, steps: 4, sampler: 'euler', previews: true }), { onProgress: (e) => events.push(e) });
    expect(events.map((e) => [e.step, e.total])).toEqual([[1, 4], [2, 4], [3, 4], [4, 4]]);
    expect(events.at(-1)!.preview?.length).toBeGreaterThan(0);
  });
});
