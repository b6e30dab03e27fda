import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadRequestError } from '../../src/queue/job.js';
import { decodeImage, decodeMask } from '../../src/engine/image/decode.js';
import { loadImageRef } from '../../src/engine/image/image-ref.js';
import { pngChunk } from '../../src/engine/image/png-text.js';
import { resizeGray, resizeRgb } from '../../src/engine/image/pil-resample.js';
import { sniffImage } from '../../src/engine/image/sniff.js';

const FIXTURES = new URL('../fixtures/models/', import.meta.url);
const fixture = (name: string) => new Uint8Array(readFileSync(new URL(name, FIXTURES)));

/** Raw RGB(A) → encoded file via sharp. */
async function encode(raw: Uint8Array, width: number, height: number, channels: 3 | 4, fmt: 'png' | 'jpeg' | 'webp' | 'gif' | 'avif'): Promise<Uint8Array> {
  const img = sharp(raw, { raw: { width, height, channels } });
  const opts = { png: () => img.png(), jpeg: () => img.jpeg({ quality: 100 }), webp: () => img.webp({ lossless: true }), gif: () => img.gif(), avif: () => img.avif({ lossless: true }) };
  return new Uint8Array(await opts[fmt]().toBuffer());
}

/** A 4x2 image: left half red, right half blue. */
function redBlue(): Uint8Array {
  const raw = new Uint8Array(4 * 2 * 3);
  for (let y = 0; y < 2; y++) for (let x = 0; x < 4; x++) raw.set(x < 2 ? [255, 0, 0] : [0, 0, 255], (y * 4 + x) * 3);
  return raw;
}

/** A PNG whose IHDR claims w×h but whose image data is a few bytes: decoding it would fail. */
function pngHeaderOnly(w: number, h: number): Uint8Array {
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, w);
  v.setUint32(4, h);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  const parts = [new Uint8Array(sig), pngChunk('IHDR', ihdr), pngChunk('IDAT', deflateSync(new Uint8Array(64))), pngChunk('IEND', new Uint8Array())];
  return new Uint8Array(Buffer.concat(parts));
}

async function rejection(p: Promise<unknown>): Promise<BadRequestError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(BadRequestError);
  return err as BadRequestError;
}

describe('decodeImage', () => {
  it('decodes the init fixture exactly as PIL does', async () => {
    const img = await decodeImage(fixture('init_64.png'));
    expect([img.width, img.height, img.format, img.hasAlpha]).toEqual([64, 64, 'png', false]);
    expect(Array.from(img.rgb.subarray(0, 6))).toEqual([0, 0, 128, 4, 0, 148]);
    expect(img.rgb.reduce((a, b) => a + b, 0)).toBe(1564524); // numpy sum of np.array(Image.open(...))
  });

  it('reproduces lowres_16.png, the PIL bicubic downscale of init_64.png, bit for bit', async () => {
    const init = await decodeImage(fixture('init_64.png'));
    const low = await decodeImage(fixture('lowres_16.png'));
    expect(resizeRgb(init.rgb, 64, 64, { width: 16, height: 16 }, 'bicubic')).toEqual(low.rgb);
  });

  it('gives 3-channel RGB for grayscale input (mask, depth fixtures)', async () => {
    const d = await decodeImage(fixture('depth_64.png'));
    expect(d.rgb.length).toBe(64 * 64 * 3);
    expect(d.rgb[0]).toBe(d.rgb[1]);
    expect(d.rgb[1]).toBe(d.rgb[2]);
  });

  it.each(['png', 'jpeg', 'webp', 'gif', 'avif'] as const)('reads %s from its bytes whatever the name', async (fmt) => {
    const bytes = await encode(redBlue(), 4, 2, 3, fmt);
    const img = await decodeImage(bytes);
    expect(img.format).toBe(fmt === 'avif' ? 'avif' : fmt);
    expect([img.width, img.height]).toEqual([4, 2]);
    const tol = fmt === 'jpeg' || fmt === 'avif' ? 40 : 0;
    const [r, g, b] = img.rgb;
    expect(Math.abs((r as number) - 255)).toBeLessThanOrEqual(tol);
    expect(g as number).toBeLessThanOrEqual(tol);
    expect(b as number).toBeLessThanOrEqual(tol);
    expect(img.rgb[3 * 3 + 2] as number).toBeGreaterThanOrEqual(255 - tol);
  });

  it('takes the first frame of an animated GIF', async () => {
    const f1 = new Uint8Array(4 * 2 * 3).fill(200);
    const f2 = new Uint8Array(4 * 2 * 3).fill(10);
    const gif = await sharp(Buffer.concat([f1, f2]), { raw: { width: 4, height: 4, channels: 3, pageHeight: 2 } }).gif().toBuffer();
    const img = await decodeImage(new Uint8Array(gif));
    expect([img.width, img.height]).toEqual([4, 2]);
    expect(Math.abs((img.rgb[0] as number) - 200)).toBeLessThanOrEqual(2);
  });

  it('applies the EXIF orientation', async () => {
    const jpeg = await sharp(redBlue(), { raw: { width: 4, height: 2, channels: 3 } }).withMetadata({ orientation: 6 }).jpeg({ quality: 100 }).toBuffer();
    const img = await decodeImage(new Uint8Array(jpeg));
    // Orientation 6: stored column 0 is the visual top row, so the 4x2 red|blue image shows 2x4, red above blue.
    expect([img.width, img.height]).toEqual([2, 4]);
    const px = (x: number, y: number) => Array.from(img.rgb.subarray((y * 2 + x) * 3, (y * 2 + x) * 3 + 3));
    expect(px(0, 0)[0]).toBeGreaterThan(200);
    expect(px(1, 0)[2]).toBeLessThan(60);
    expect(px(0, 3)[2]).toBeGreaterThan(200);
    expect(px(1, 3)[0]).toBeLessThan(60);
  });

  it('flattens transparency onto white', async () => {
    const rgba = Uint8Array.from([0, 0, 0, 0, 255, 0, 0, 255, 0, 0, 0, 128, 10, 20, 30, 255]);
    const img = await decodeImage(await encode(rgba, 2, 2, 4, 'png'));
    expect(img.hasAlpha).toBe(true);
    expect(Array.from(img.rgb.subarray(0, 3))).toEqual([255, 255, 255]);
    expect(Array.from(img.rgb.subarray(3, 6))).toEqual([255, 0, 0]);
    for (const v of img.rgb.subarray(6, 9)) expect(Math.abs(v - 127)).toBeLessThanOrEqual(1);
    expect(Array.from(img.rgb.subarray(9, 12))).toEqual([10, 20, 30]);
  });

  it('names what a non-image file is, whatever its file name said', async () => {
    const pdf = new TextEncoder().encode('%PDF-1.7\n%\xe2\xe3\n1 0 obj << /Type /Catalog >> endobj\n');
    expect((await rejection(decodeImage(pdf))).message).toBe("That file isn't an image I can read (got a PDF)");
    const text = new TextEncoder().encode('just some notes, saved as cat.png\n');
    expect((await rejection(decodeImage(text))).message).toBe("That file isn't an image I can read (got text)");
    const html = new TextEncoder().encode('<!DOCTYPE html><html><body>Not found</body></html>');
    expect((await rejection(decodeImage(html))).message).toBe("That file isn't an image I can read (got a web page)");
    const zip = Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0]);
    expect((await rejection(decodeImage(zip))).message).toBe("That file isn't an image I can read (got a ZIP archive or Office document)");
    const mp4 = Uint8Array.from([0, 0, 0, 0x18, ...new TextEncoder().encode('ftypisom'), 0, 0, 2, 0, ...new TextEncoder().encode('isomiso2')]);
    expect((await rejection(decodeImage(mp4))).message).toBe("That file isn't an image I can read (got a video)");
    expect((await rejection(decodeImage(new Uint8Array()))).message).toBe("That file isn't an image I can read (got an empty file)");
    const random = Uint8Array.from({ length: 300 }, (_, i) => (i * 97 + 13) % 256 | 0x80);
    expect((await rejection(decodeImage(random))).message).toBe("That file isn't an image I can read (got an unknown kind of file)");
  });

  it('refuses image formats it does not take, by name', async () => {
    const bmp = Uint8Array.from([0x42, 0x4d, 70, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0, 40, 0]);
    expect((await rejection(decodeImage(bmp))).message).toBe("BMP images aren't supported; send a PNG, JPEG, WebP, GIF or AVIF image");
    const svg = new TextEncoder().encode('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
    expect((await rejection(decodeImage(svg))).message).toMatch(/^SVG images aren't supported/);
    const heic = new Uint8Array([0, 0, 0, 24, ...new TextEncoder().encode('ftypheic\0\0\0\0mif1heic'), ...new Uint8Array(64)]);
    expect((await rejection(decodeImage(heic))).message).toMatch(/^HEIC photos aren't supported; send a PNG, JPEG, WebP, GIF or AVIF image/);
    const tiff = await sharp(redBlue(), { raw: { width: 4, height: 2, channels: 3 } }).tiff().toBuffer();
    expect((await rejection(decodeImage(new Uint8Array(tiff)))).message).toMatch(/^TIFF images aren't supported/);
  });

  it('rejects oversized dimensions from the header, before decoding', async () => {
    const huge = pngHeaderOnly(9000, 9000);
    const t0 = performance.now();
    const err = await rejection(decodeImage(huge));
    // Had the decoder run, the 64-byte image data would have failed as "damaged" instead.
    expect(err.message).toBe('Image is 9000×9000; the limit is 4096×4096');
    expect(performance.now() - t0).toBeLessThan(500);
    expect((await rejection(decodeImage(pngHeaderOnly(20000, 10)))).message).toBe('Image is 20000×10; the limit is 4096×4096');
  });

  it('honours custom limits, and words non-square pixel limits in megapixels', async () => {
    const png = await encode(Uint8Array.from({ length: 128 * 64 * 3 }, (_, i) => (i * 7919) % 251), 128, 64, 3, 'png');
    expect((await rejection(decodeImage(png, { maxPixels: 90 * 90 }))).message).toBe('Image is 128×64; the limit is 90×90');
    expect((await rejection(decodeImage(pngHeaderOnly(3000, 2000), { maxPixels: 5_000_000 }))).message).toBe(
      'Image is 3000×2000; the limit is 5.0 megapixels',
    );
    expect((await rejection(decodeImage(png, { maxBytes: 100 }))).message).toMatch(/^That file is \d+ bytes; the limit is 100 bytes$/);
    await expect(decodeImage(png, { maxPixels: 128 * 64 })).resolves.toMatchObject({ width: 128, height: 64 });
  });

  it('rejects files over the byte limit without looking further', async () => {
    const big = new Uint8Array(11 * 1024 * 1024);
    big.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect((await rejection(decodeImage(big))).message).toBe('That file is 11 MB; the limit is 10 MB');
  });

  it('reports damaged files', async () => {
    const png = await encode(redBlue(), 4, 2, 3, 'png');
    expect((await rejection(decodeImage(png.subarray(0, 20)))).message).toBe('That PNG file looks damaged; I couldn\'t read it');
    expect((await rejection(decodeImage(pngHeaderOnly(64, 64)))).message).toBe(
      "That PNG file looks damaged or cut short; I couldn't decode it",
    );
  });
});

describe('decodeMask', () => {
  it('reads the mask fixture (white rectangle x 16..47, y 8..39)', async () => {
    const m = await decodeMask(fixture('mask_64.png'), 64, 64);
    expect(m.resized).toBeNull();
    for (let y = 0; y < 64; y++) {
      for (let x = 0; x < 64; x++) {
        const inside = x >= 16 && x <= 47 && y >= 8 && y <= 39;
        expect(m.mask[y * 64 + x]).toBe(inside ? 255 : 0);
      }
    }
  });

  it('resizes with PIL LANCZOS when the size differs, and says so', async () => {
    const m = await decodeMask(fixture('mask_64.png'), 96, 32);
    expect(m.resized).toEqual({ from: { width: 64, height: 64 }, to: { width: 96, height: 32 } });
    const full = await decodeMask(fixture('mask_64.png'), 64, 64);
    expect(m.mask).toEqual(resizeGray(full.mask, 64, 64, { width: 96, height: 32 }, 'lanczos'));
  });

  it('uses PIL luma for colour masks', async () => {
    const rgb = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]);
    const m = await decodeMask(await encode(rgb, 2, 2, 3, 'png'), 2, 2);
    // (r·19595 + g·38470 + b·7471 + 0x8000) >> 16
    expect(Array.from(m.mask)).toEqual([76, 150, 29, 255]);
  });

  it('treats transparent areas as repaint (A1111)', async () => {
    // Opaque black (keep), transparent (repaint), half-transparent (repaint), opaque white (repaint).
    const rgba = Uint8Array.from([0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 100, 255, 255, 255, 255]);
    const m = await decodeMask(await encode(rgba, 2, 2, 4, 'png'), 2, 2);
    expect(Array.from(m.mask)).toEqual([0, 255, 255, 255]);
  });

  it('applies the same checks as images', async () => {
    expect((await rejection(decodeMask(new TextEncoder().encode('%PDF-1.4'), 8, 8))).message).toBe(
      "That file isn't an image I can read (got a PDF)",
    );
  });
});

describe('sniffImage', () => {
  it('tells AVIF from HEIC from MP4 by brand', () => {
    const ftyp = (major: string, ...compat: string[]) =>
      new Uint8Array([0, 0, 0, 16 + 4 * compat.length, ...new TextEncoder().encode(`ftyp${major}\0\0\0\0${compat.join('')}`)]);
    expect(sniffImage(ftyp('avif', 'mif1', 'miaf'))).toEqual({ kind: 'image', format: 'avif' });
    expect(sniffImage(ftyp('mif1', 'avif'))).toEqual({ kind: 'image', format: 'avif' });
    expect(sniffImage(ftyp('heic', 'mif1'))).toEqual({ kind: 'image', format: 'heif' });
    expect(sniffImage(ftyp('qt  '))).toEqual({ kind: 'other', what: 'a video' });
    expect(sniffImage(ftyp('M4A ', 'isom'))).toEqual({ kind: 'other', what: 'an audio file' });
  });
});

describe('loadImageRef', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sdbot-image-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads inline base64, files and Redis keys', async () => {
    const bytes = fixture('init_64.png');
    expect(await loadImageRef({ kind: 'bytes', base64: Buffer.from(bytes).toString('base64') })).toEqual(bytes);
    const path = join(dir, 'init.png');
    await writeFile(path, bytes);
    expect(await loadImageRef({ kind: 'file', path })).toEqual(bytes);
    const store = new Map([['att:1', bytes]]);
    const get = async (k: string) => store.get(k) ?? null;
    expect(await loadImageRef({ kind: 'redis', key: 'att:1' }, get)).toEqual(bytes);
  });

  it('explains expired attachments, missing and oversized files', async () => {
    const get = async () => null;
    expect((await rejection(loadImageRef({ kind: 'redis', key: 'att:gone' }, get))).message).toBe(
      'The attached image has expired; please send it again',
    );
    await rejection(loadImageRef({ kind: 'file', path: join(dir, 'missing.png') }));
    const path = join(dir, 'big.bin');
    await writeFile(path, new Uint8Array(2048));
    expect((await rejection(loadImageRef({ kind: 'file', path }, undefined, 1024))).message).toBe('That file is 2 KB; the limit is 1 KB');
  });

  it('needs a getter for Redis references', async () => {
    await expect(loadImageRef({ kind: 'redis', key: 'k' })).rejects.toThrow(/no getter/);
  });
});
