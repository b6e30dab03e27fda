/** Pixels → files to store or upload: PNG with the A1111 `parameters` chunk, lossy fallbacks for upload limits. */
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import type { Sharp } from 'sharp';
import { exifUserComment, insertJpegExif, insertWebpExif } from './exif-comment.js';
import { addPngText, pngChunk } from './png-text.js';

export interface EncodeOptions {
  /** zlib level 0–9; 6 is sharp's default (≈72 ms for 1024² here), 1 halves that for ~10 % larger files. */
  compressionLevel?: number;
}

function rawInput(rgb: Uint8Array, width: number, height: number): Sharp {
  if (rgb.length !== width * height * 3) throw new RangeError(`expected ${width * height * 3} RGB bytes, got ${rgb.length}`);
  return sharp(rgb, { raw: { width, height, channels: 3 } });
}

/** PNG of an HWC RGB image, carrying `parameters` (the infotext) as a text chunk when given. */
export async function encodePng(
  rgb: Uint8Array, width: number, height: number, parameters: string | null, opts: EncodeOptions = {},
): Promise<Uint8Array> {
  const buf = await rawInput(rgb, width, height).png({ compressionLevel: opts.compressionLevel ?? 6 }).toBuffer();
  const png = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  return parameters === null ? png : addPngText(png, [{ keyword: 'parameters', text: parameters }]);
}

/**
 * A minimal synchronous PNG encoder (filter "none", fast deflate) for tiny images such as latent previews, where a
 * round trip through sharp's thread pool would cost more than the encoding.
 */
export function encodeSmallPng(rgb: Uint8Array, width: number, height: number): Uint8Array {
  if (rgb.length !== width * height * 3) throw new RangeError(`expected ${width * height * 3} RGB bytes, got ${rgb.length}`);
  const stride = width * 3;
  const raw = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y++) raw.set(rgb.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit, truecolour, deflate, adaptive filtering, no interlace
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(raw, { level: 1 })),
    pngChunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export type UploadFormat = 'png' | 'webp' | 'jpeg';

export interface EncodedUpload {
  bytes: Uint8Array;
  format: UploadFormat;
  mime: string;
  /** File extension without the dot. */
  ext: string;
}

const MIME: Record<UploadFormat, string> = { png: 'image/png', webp: 'image/webp', jpeg: 'image/jpeg' };
const EXT: Record<UploadFormat, string> = { png: 'png', webp: 'webp', jpeg: 'jpg' };
const WEBP_MAX_SIDE = 16383;

function withParameters(bytes: Uint8Array, format: 'webp' | 'jpeg', width: number, height: number, parameters: string | null): Uint8Array {
  if (parameters === null) return bytes;
  const exif = exifUserComment(parameters);
  return format === 'jpeg' ? insertJpegExif(bytes, exif) : insertWebpExif(bytes, width, height, exif);
}

function upload(bytes: Uint8Array, format: UploadFormat): EncodedUpload {
  return { bytes, format, mime: MIME[format], ext: EXT[format] };
}

/**
 * The file to upload for one image: PNG with its infotext when it fits `maxBytes` (Discord's default 10 MiB),
 * else WebP, else JPEG at falling quality. Lossy fallbacks carry the infotext in EXIF UserComment as A1111 does.
 */
export async function encodeForUpload(
  rgb: Uint8Array, width: number, height: number, parameters: string | null, maxBytes: number,
): Promise<EncodedUpload> {
  const png = await encodePng(rgb, width, height, parameters);
  if (png.length <= maxBytes) return upload(png, 'png');
  const candidates: { format: 'webp' | 'jpeg'; quality: number }[] = [];
  if (width <= WEBP_MAX_SIDE && height <= WEBP_MAX_SIDE) candidates.push({ format: 'webp', quality: 90 });
  for (const quality of [90, 80, 70, 60, 50]) candidates.push({ format: 'jpeg', quality });
  for (const { format, quality } of candidates) {
    const img = rawInput(rgb, width, height);
    const buf = format === 'webp' ? await img.webp({ quality }).toBuffer() : await img.jpeg({ quality, mozjpeg: true }).toBuffer();
    const bytes = withParameters(new Uint8Array(buf.buffer, buf.byteOffset, buf.length), format, width, height, parameters);
    if (bytes.length <= maxBytes) return upload(bytes, format);
  }
  throw new Error(`encodeForUpload: a ${width}x${height} image does not fit in ${maxBytes} bytes even as JPEG`);
}
