/**
 * Stable unCLIP image variations against diffusers' StableUnCLIPImg2ImgPipeline (tiny-sd21-unclip.cases.json):
 * the CLIP image preprocessing, the encoder, the embedding noise draw and its noising, and the whole job (latents
 * within 2e-3 + 1e-3·|ref|, images within 2/255); plus what a broken folder or a wrong job says.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/create-engine.js';
import { loadModel } from '../../src/engine/loaded-model.js';
import { clipPixelValues } from '../../src/engine/image/clip-image-processor.js';
import { decodeImage, readPngParameters } from '../../src/engine/image/index.js';
import { encodeImage, noiseImageEmbeds, timestepEmbedding } from '../../src/engine/image-conditioning.js';
import { TorchGenerator } from '../../src/engine/sampling/torch-rng.js';
import { fromHalfBits, toHalfBits } from '../../src/engine/onnx/float16.js';
import type { PipelineOutput } from '../../src/engine/pipelines/types.js';
import { parseRequest } from '../../src/queue/job.js';
import { caseRequest, FIXTURE_MODELS, flatten, loadCases, maxAbsDiff, runCase, worstRatio } from '../helpers/fixture-cases.js';

const MODEL = 'tiny-sd21-unclip';
const DIR = join(FIXTURE_MODELS, MODEL);
const cases = loadCases(MODEL);

interface Conditioning {
  pixel_values: unknown;
  pixel_values_shape: number[];
  image_embeds: unknown;
  embed_noise: unknown;
  class_labels_cond: unknown;
}
const conditioning = (c: (typeof cases)[number]) => c['image_conditioning'] as Conditioning;
const sourceImage = async (c: (typeof cases)[number]) => decodeImage(readFileSync(join(FIXTURE_MODELS, c.inputs!['image']!)));

describe('stable unCLIP image variations reproduce diffusers', async () => {
  const engine = await createEngine();
  await engine.loadModel({ id: MODEL, dir: DIR });
  await engine.loadModel({ id: 'tiny-sd2-v', dir: join(FIXTURE_MODELS, 'tiny-sd2-v') });
  afterAll(() => engine.close());
  const model = engine.getModel(MODEL)!;
  const cond = model.imageConditioning!;

  it('has three cases: noise levels 0 / > 0, CFG on and off, with and without a prompt, a batch of 2', () => {
    expect(cases.map((c) => c['noise_level'])).toEqual([0, 250, 600]);
    expect(cases.some((c) => c.guidance_scale <= 1) && cases.some((c) => c.guidance_scale > 1)).toBe(true);
    expect(cases.some((c) => c.prompt !== '') && cases.some((c) => c.prompt === '')).toBe(true);
    expect(Math.max(...cases.map((c) => c.batch_size))).toBe(2);
  });

  for (const c of cases) {
    it(`${c.id}: CLIP pixel values, image embeds, embedding noise and class labels`, async () => {
      const k = conditioning(c);
      const pixels = clipPixelValues(await sourceImage(c), cond.processor);
      expect(pixels.dims).toEqual(k.pixel_values_shape);
      expect(maxAbsDiff(pixels.data, flatten(k.pixel_values))).toBeLessThan(1e-6);
      const embeds = await encodeImage(cond, await sourceImage(c));
      expect(worstRatio(embeds.data, flatten(k.image_embeds), 1e-5, 1e-5)).toBeLessThanOrEqual(1);
      // generator 0's first draw, then the noising of the reference embeds with it
      const noise = new TorchGenerator(c.seed).randn([1, cond.mean.length]);
      expect(maxAbsDiff(noise, flatten(k.embed_noise))).toBeLessThan(1e-6);
      const ref = { data: Float32Array.from(flatten(k.image_embeds)), dims: [1, cond.mean.length] };
      const labels = noiseImageEmbeds(cond, ref, noise, c['noise_level'] as number);
      expect(maxAbsDiff(labels.data, flatten(k.class_labels_cond))).toBeLessThan(2e-6);
      const level = timestepEmbedding(c['noise_level'] as number, cond.mean.length);
      expect(maxAbsDiff(level, flatten(k.class_labels_cond).slice(cond.mean.length))).toBeLessThan(1e-6);
    });

    it(`${c.id}: latents and images`, async () => {
      const { result } = await runCase(engine, c);
      const text = readPngParameters(result.images[0]!.png);
      expect(text).toContain(`Noise level: ${c['noise_level'] as number}`);
      expect(text).not.toMatch(/Denoising strength/);
    });
  }

  it('noise level defaults to 0 (diffusers), and the size to the model default, not the image size', async () => {
    const c = cases.find((x) => x['noise_level'] === 0 && x.width === 64 && x.height === 64)!;
    const { noiseLevel: _omit, width: _w, height: _h, ...rest } = caseRequest(c);
    let out: PipelineOutput | undefined;
    await engine.runJob(parseRequest(rest), { onOutput: (o) => (out = o) });
    expect(out!.latents.dims).toEqual(c.outputs.latents_shape);
    expect(worstRatio(out!.latents.data, flatten(c.outputs.latents), 2e-3, 1e-3)).toBeLessThanOrEqual(1);
  });

  it('refuses other job kinds, and noise levels beyond the noising schedule', async () => {
    const base = { model: MODEL, prompt: '', seed: '1', steps: 2, initImage: { kind: 'file' as const, path: join(FIXTURE_MODELS, 'init_64.png') } };
    await expect(engine.runJob(parseRequest({ ...base, kind: 'txt2img', initImage: null }))).rejects.toThrow(/image-variation model \(stable unCLIP\).*not txt2img/);
    await expect(engine.runJob(parseRequest({ ...base, kind: 'img2img' }))).rejects.toThrow(/not img2img/);
    await expect(engine.runJob(parseRequest({ ...base, kind: 'variation', initImage: null }))).rejects.toThrow(/needs an image/);
    const small = copyFolder();
    try {
      writeFileSync(join(small, 'image_noising_scheduler', 'scheduler_config.json'), JSON.stringify({ _class_name: 'DDPMScheduler', num_train_timesteps: 100, beta_schedule: 'squaredcos_cap_v2' }));
      await engine.loadModel({ id: 'short-noising', dir: small });
      await expect(engine.runJob(parseRequest({ ...base, model: 'short-noising', kind: 'variation', noiseLevel: 150 }))).rejects.toThrow(/Noise level must be a whole number from 0 to 99 \(got 150\)/);
    } finally {
      await engine.unloadModel('short-noising');
      rmSync(small, { recursive: true, force: true });
    }
  });

  it('a folder without an image encoder keeps the img2img-style variation', async () => {
    const r = await engine.runJob(parseRequest({
      kind: 'variation', model: 'tiny-sd2-v', prompt: 'x', seed: '1', steps: 2, strength: 0.5,
      initImage: { kind: 'file', path: join(FIXTURE_MODELS, 'init_64.png') },
    }));
    expect(readPngParameters(r.images[0]!.png)).toMatch(/Denoising strength: 0\.5/);
  });
});

/** A .safetensors file of [1, D] tensors, written by hand to the format's spec. */
function safetensors(tensors: Record<string, number[]>, dtype: 'F32' | 'F16'): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const parts: Buffer[] = [];
  let offset = 0;
  for (const [name, values] of Object.entries(tensors)) {
    const f = Float32Array.from(values);
    const raw = Buffer.from(dtype === 'F32' ? f.buffer : toHalfBits(f).buffer);
    header[name] = { dtype, shape: [1, values.length], data_offsets: [offset, offset + raw.length] };
    parts.push(raw);
    offset += raw.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...parts]);
}

function copyFolder(): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'unclip-')), MODEL);
  cpSync(DIR, dir, { recursive: true });
  return dir;
}

describe('stable unCLIP folder errors', () => {
  const broken = async (edit: (dir: string) => void): Promise<unknown> => {
    const dir = copyFolder();
    try {
      edit(dir);
      const m = await loadModel(dir);
      await m.release();
      return null;
    } catch (e) {
      return e;
    } finally {
      rmSync(join(dir, '..'), { recursive: true, force: true });
    }
  };

  it('names the missing piece', async () => {
    expect(String(await broken((d) => rmSync(join(d, 'image_normalizer', 'mean_std.json'))))).toMatch(/image_encoder\/ \(stable unCLIP\) but no image_normalizer\/mean_std\.json/);
    expect(String(await broken((d) => rmSync(join(d, 'image_noising_scheduler'), { recursive: true })))).toMatch(/no image_noising_scheduler\/scheduler_config\.json/);
    expect(String(await broken((d) => rmSync(join(d, 'feature_extractor'), { recursive: true })))).toMatch(/no feature_extractor\/preprocessor_config\.json/);
    expect(String(await broken((d) => rmSync(join(d, 'image_encoder', 'model.onnx'))))).toMatch(/no image_encoder\/model\.onnx/);
  });

  it("reads the normalizer from diffusers' own safetensors (F32, F16) when there is no mean_std.json", async () => {
    const ref = JSON.parse(readFileSync(join(DIR, 'image_normalizer', 'mean_std.json'), 'utf8')) as { mean: number[]; std: number[] };
    for (const dtype of ['F32', 'F16'] as const) {
      const dir = copyFolder();
      try {
        rmSync(join(dir, 'image_normalizer', 'mean_std.json'));
        writeFileSync(join(dir, 'image_normalizer', 'diffusion_pytorch_model.safetensors'), safetensors({ mean: ref.mean, std: ref.std }, dtype));
        const m = await loadModel(dir);
        const expected = (v: number[]) => (dtype === 'F32' ? Float32Array.from(v) : fromHalfBits(toHalfBits(Float32Array.from(v))));
        expect(Array.from(m.imageConditioning!.mean)).toEqual(Array.from(expected(ref.mean)));
        expect(Array.from(m.imageConditioning!.std)).toEqual(Array.from(expected(ref.std)));
        await m.release();
      } finally {
        rmSync(join(dir, '..'), { recursive: true, force: true });
      }
    }
    const bad = await broken((d) => {
      rmSync(join(d, 'image_normalizer', 'mean_std.json'));
      writeFileSync(join(d, 'image_normalizer', 'diffusion_pytorch_model.safetensors'), safetensors({ mean: [0] }, 'F32'));
    });
    expect(String(bad)).toMatch(/diffusion_pytorch_model\.safetensors: no tensor "std"/);
  });

  it('checks the normalizer against the encoder and the UNet', async () => {
    const meanStd = (mean: number[], std: number[]) => (d: string) => writeFileSync(join(d, 'image_normalizer', 'mean_std.json'), JSON.stringify({ mean, std }));
    expect(String(await broken(meanStd([0, 0], [1])))).toMatch(/"mean" has 2 values but "std" has 1/);
    expect(String(await broken(meanStd([0, 0], [1, 1])))).toMatch(/"image_embeds" has 32 dims but .* has 2/);
    expect(String(await broken(meanStd(new Array(32).fill(0), new Array(32).fill(0))))).toMatch(/"std" value must be positive/);
    expect(String(await broken((d) => writeFileSync(join(d, 'image_normalizer', 'mean_std.json'), '{"mean": "x"}')))).toMatch(/"mean" must be a non-empty array/);
    expect(String(await broken((d) => cpSync(join(FIXTURE_MODELS, 'tiny-sd2-v', 'unet'), join(d, 'unet'), { recursive: true })))).toMatch(/needs a "class_labels" input/);
    expect(await broken(() => undefined)).toBeNull();
  });
});
