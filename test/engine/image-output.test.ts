import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { parseRequest } from '../../src/queue/job.js';
import { decodeImage } from '../../src/engine/image/decode.js';
import { encodeForUpload, encodePng } from '../../src/engine/image/encode.js';
import { makeGrid } from '../../src/engine/image/grid.js';
import { infotext, parseInfotext, requestInfotext } from '../../src/engine/image/infotext.js';
import { readPngParameters, readPngText } from '../../src/engine/image/png-text.js';
import { latentPreview } from '../../src/engine/image/preview.js';
import { readImageParameters } from '../../src/engine/image/read-parameters.js';
import type { RgbImage } from '../../src/engine/image/types.js';

const solid = (width: number, height: number, rgb: [number, number, number]): RgbImage => {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i += 3) data.set(rgb, i);
  return { width, height, rgb: data };
};

const noise = (n: number): Uint8Array => {
  const out = new Uint8Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = s >>> 23;
  }
  return out;
};

describe('infotext', () => {
  it('writes the AUTOMATIC1111 layout, only the fields that apply', () => {
    const text = infotext({
      prompt: 'a cat in a hat',
      negativePrompt: 'blurry',
      steps: 30,
      sampler: 'euler_a',
      schedule: 'karras',
      cfgScale: 7,
      seed: '42',
      width: 512,
      height: 512,
      model: 'sd15',
      denoisingStrength: 0.75,
    });
    expect(text).toBe(
      'a cat in a hat\nNegative prompt: blurry\nSteps: 30, Sampler: Euler a, Schedule type: Karras, CFG scale: 7, Seed: 42, ' +
        'Size: 512x512, Model: sd15, Denoising strength: 0.75, Version: sdbot',
    );
    const bare = infotext({ prompt: 'x', negativePrompt: '', steps: 20, sampler: 'dpmpp_2m', schedule: 'default', cfgScale: 7.5, seed: 18446744073709551615n, width: 768, height: 512 });
    expect(bare).toBe('x\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 18446744073709551615, Size: 768x512, Version: sdbot');
  });

  it('quotes values with commas, colons or newlines as JSON, as A1111 does', () => {
    const text = infotext({ prompt: 'p', model: 'my, model: v2', extra: { Note: 'say "hi"\nthere', Plain: 'ok' }, version: null });
    expect(text).toBe('p\nModel: "my, model: v2", Note: "say \\"hi\\"\\nthere", Plain: ok');
  });

  it('parses back: prompts, multi-line prompts, quoted values', () => {
    const text = infotext({
      prompt: 'line one,\nline two: more',
      negativePrompt: 'ugly, bad\nworse',
      steps: 25,
      sampler: 'heun',
      cfgScale: 6,
      seed: '123',
      width: 640,
      height: 448,
      model: 'a,b',
      extra: { 'ControlNet 0': 'Weight: 1, Guidance Start: 0, Guidance End: 1' },
    });
    const parsed = parseInfotext(text);
    expect(parsed.prompt).toBe('line one,\nline two: more');
    expect(parsed.negativePrompt).toBe('ugly, bad\nworse');
    expect(parsed.params).toEqual({
      Steps: '25',
      Sampler: 'Heun',
      'CFG scale': '6',
      Seed: '123',
      Size: '640x448',
      Model: 'a,b',
      'ControlNet 0': 'Weight: 1, Guidance Start: 0, Guidance End: 1',
      Version: 'sdbot',
    });
  });

  it('parses a real A1111 infotext and a prompt-only text', () => {
    const a1111 =
      'girl with an artist\'s beret, ((eyeshadow))\nNegative prompt: ugly, fat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b';
    const p = parseInfotext(a1111);
    expect(p.prompt).toBe("girl with an artist's beret, ((eyeshadow))");
    expect(p.negativePrompt).toBe('ugly, fat');
    expect(p.params['Model hash']).toBe('45dee52b');
    expect(parseInfotext('just a prompt, nothing else')).toEqual({ prompt: 'just a prompt, nothing else', negativePrompt: '', params: {} });
  });

  it('builds the text of a request image (defaults resolved by the pipeline)', () => {
    const req = parseRequest({
      kind: 'img2img', model: 'sd15', prompt: 'a fox', seed: '7', strength: 0.6,
      initImage: { kind: 'redis', key: 'k' }, schedule: 'karras',
    });
    const text = requestInfotext(req, { seed: '8', width: 512, height: 768, steps: 30, sampler: 'dpmpp_2m', guidance: 7 });
    expect(text).toBe(
      'a fox\nSteps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 8, Size: 512x768, Model: sd15, ' +
        'Denoising strength: 0.6, Version: sdbot',
    );
    const up = parseRequest({ kind: 'upscale', model: 'x4', prompt: 'p', seed: '1', noiseLevel: 60, initImage: { kind: 'redis', key: 'k' } });
    expect(requestInfotext(up, { seed: '1', width: 256, height: 256, steps: 20, sampler: 'ddim', guidance: 9 })).toContain('Noise level: 60, Version: sdbot');
    const txt = parseRequest({ model: 'sdxl', prompt: 'p', seed: '1', refiner: { model: 'refiner', switchAt: 0.8 } });
    const t = requestInfotext(txt, { seed: '1', width: 1024, height: 1024, steps: 30, sampler: 'euler', guidance: 5 });
    expect(t).not.toContain('Denoising strength');
    expect(t).toContain('Refiner: refiner, Refiner switch at: 0.8');
  });
});

describe('PNG output', () => {
  const img = { width: 8, height: 4, rgb: noise(8 * 4 * 3) };

  it('round-trips pixels and the parameters chunk (readable by sharp too)', async () => {
    const params = 'a cat\nNegative prompt: dog\nSteps: 30, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 8x4, Version: sdbot';
    const png = await encodePng(img.rgb, img.width, img.height, params);
    expect(readPngParameters(png)).toBe(params);
    const meta = await sharp(png).metadata();
    expect(meta.comments).toEqual([{ keyword: 'parameters', text: params }]);
    const back = await decodeImage(png);
    expect(back.rgb).toEqual(img.rgb);
    expect(parseInfotext(readPngParameters(png) ?? '').params.Seed).toBe('42');
  });

  it('writes Latin-1 text as tEXt and anything else as UTF-8 iTXt, like Pillow', async () => {
    const latin = 'café crème, naïve';
    const pngL = await encodePng(img.rgb, 8, 4, latin);
    expect(Buffer.from(pngL).includes(Buffer.from('tEXtparameters\0caf\xe9', 'latin1'))).toBe(true);
    expect(readPngParameters(pngL)).toBe(latin);
    const cjk = '猫 with a 🎩, ünïcödé';
    const pngU = await encodePng(img.rgb, 8, 4, cjk);
    expect(Buffer.from(pngU).includes(Buffer.from('iTXtparameters\0\0\0\0\0', 'latin1'))).toBe(true);
    expect(readPngParameters(pngU)).toBe(cjk);
    expect((await sharp(pngU).metadata()).comments).toEqual([{ keyword: 'parameters', text: cjk }]);
    expect(readPngText(await encodePng(img.rgb, 8, 4, null))).toEqual([]);
  });

  it('falls back to WebP, then JPEG, when the PNG is over the upload limit, keeping the infotext in EXIF', async () => {
    const big = { width: 256, height: 256, rgb: noise(256 * 256 * 3) };
    const params = 'noise, 猫\nSteps: 1, Seed: 1, Version: sdbot';
    const asPng = await encodeForUpload(big.rgb, 256, 256, params, 10 * 1024 * 1024);
    expect([asPng.format, asPng.mime, asPng.ext]).toEqual(['png', 'image/png', 'png']);
    const limit = asPng.bytes.length - 1;
    const lossy = await encodeForUpload(big.rgb, 256, 256, params, limit);
    expect(lossy.format).toBe('webp');
    expect(lossy.bytes.length).toBeLessThanOrEqual(limit);
    expect(await readImageParameters(lossy.bytes)).toBe(params);
    expect((await decodeImage(lossy.bytes)).width).toBe(256);
    const webpSize = lossy.bytes.length;
    const jpeg = await encodeForUpload(big.rgb, 256, 256, params, webpSize - 1);
    expect([jpeg.format, jpeg.mime, jpeg.ext]).toEqual(['jpeg', 'image/jpeg', 'jpg']);
    expect(await readImageParameters(jpeg.bytes)).toBe(params);
    expect((await decodeImage(jpeg.bytes)).height).toBe(256);
    await expect(encodeForUpload(big.rgb, 256, 256, params, 100)).rejects.toThrow(/does not fit/);
  });
});

describe('makeGrid', () => {
  it('lays out 4 images 2x2, row by row', () => {
    const colours: [number, number, number][] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 9, 9]];
    const g = makeGrid(colours.map((c) => solid(3, 2, c)));
    expect([g.width, g.height]).toEqual([6, 4]);
    const px = (x: number, y: number) => Array.from(g.rgb.subarray((y * 6 + x) * 3, (y * 6 + x) * 3 + 3));
    expect(px(0, 0)).toEqual([255, 0, 0]);
    expect(px(5, 1)).toEqual([0, 255, 0]);
    expect(px(2, 2)).toEqual([0, 0, 255]);
    expect(px(3, 3)).toEqual([9, 9, 9]);
  });

  it('handles 1, 2 and 3 images and columns beyond the count', () => {
    expect(makeGrid([solid(5, 5, [1, 2, 3])])).toMatchObject({ width: 5, height: 5 });
    expect(makeGrid([solid(5, 4, [1, 2, 3]), solid(5, 4, [4, 5, 6])])).toMatchObject({ width: 10, height: 4 });
    const three = makeGrid([solid(2, 2, [1, 1, 1]), solid(2, 2, [2, 2, 2]), solid(2, 2, [3, 3, 3])], 2, [200, 100, 50]);
    expect([three.width, three.height]).toEqual([4, 4]);
    expect(Array.from(three.rgb.subarray((3 * 4 + 3) * 3, (3 * 4 + 3) * 3 + 3))).toEqual([200, 100, 50]);
    expect(makeGrid([solid(2, 2, [0, 0, 0]), solid(2, 2, [0, 0, 0])], 4)).toMatchObject({ width: 4, height: 2 });
    expect(makeGrid([solid(2, 2, [0, 0, 0]), solid(2, 2, [0, 0, 0])], 1)).toMatchObject({ width: 2, height: 4 });
  });

  it('centres smaller images in their cells', () => {
    const g = makeGrid([solid(4, 4, [10, 10, 10]), solid(2, 2, [99, 99, 99])], 2, [0, 0, 0]);
    const px = (x: number, y: number) => g.rgb[(y * 8 + x) * 3];
    expect(px(4, 0)).toBe(0);
    expect(px(5, 1)).toBe(99);
    expect(px(6, 2)).toBe(99);
    expect(px(7, 3)).toBe(0);
  });

  it('composes a 2x2 grid of 1024² images quickly', () => {
    const imgs = [0, 1, 2, 3].map((i) => solid(1024, 1024, [i, i, i]));
    const t0 = performance.now();
    const g = makeGrid(imgs);
    expect(performance.now() - t0).toBeLessThan(200);
    expect(g.rgb[(2047 * 2048 + 2047) * 3]).toBe(3);
  });
});

describe('latentPreview', () => {
  it('maps SD latents through the linear factors to a small PNG', async () => {
    // Channel 0 = 1, others 0 → RGB = (1 + factors[0]) / 2 · 255 = (0.3512, 0.2297, 0.3227) → 172, 157, 169
    const lat = new Float32Array(4 * 8 * 8);
    lat.fill(1, 0, 64);
    const png = latentPreview(lat, 4, 8, 8, 'sd');
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([8, 8, 3]);
    expect(Array.from(data.subarray(0, 3))).toEqual([172, 157, 169]);
  });

  it('adds the family bias (SDXL) and handles 16-channel SD3 latents', async () => {
    const zeros = new Float32Array(4 * 2 * 2);
    const sdxl = await sharp(latentPreview(zeros, 4, 2, 2, 'sdxl')).raw().toBuffer();
    // (1 + 0.1084)/2·255 = 141.3, (1 − 0.0175)/2·255 = 125.3, (1 − 0.0011)/2·255 = 127.4
    expect(Array.from(sdxl.subarray(0, 3))).toEqual([141, 125, 127]);
    const sd3 = await sharp(latentPreview(new Float32Array(16 * 2 * 2), 16, 2, 2, 'sd3')).raw().toBuffer();
    expect(Array.from(sd3.subarray(0, 3))).toEqual([158, 155, 152]);
    expect(() => latentPreview(new Float32Array(16 * 4), 4, 2, 2, 'sd3')).toThrow(RangeError);
    expect(() => latentPreview(new Float32Array(10), 4, 2, 2, 'sd')).toThrow(RangeError);
  });

  it('shows a batch as a grid', async () => {
    const meta = await sharp(latentPreview(new Float32Array(4 * 4 * 8 * 8), 4, 8, 8, 'sd')).metadata();
    expect([meta.width, meta.height]).toEqual([16, 16]);
  });

  it('costs well under 5 ms for 64x64 latents (median of warm runs)', () => {
    const lat = Float32Array.from({ length: 4 * 64 * 64 }, (_, i) => Math.sin(i));
    for (let i = 0; i < 20; i++) latentPreview(lat, 4, 64, 64, 'sd');
    const times: number[] = [];
    for (let i = 0; i < 21; i++) {
      const t0 = performance.now();
      latentPreview(lat, 4, 64, 64, 'sd');
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    expect(times[10]).toBeLessThan(5);
  });
});

describe('fixture PNGs', () => {
  it('carry no parameters chunk', () => {
    const bytes = new Uint8Array(readFileSync(new URL('../fixtures/models/init_64.png', import.meta.url)));
    expect(readPngParameters(bytes)).toBeNull();
  });
});
