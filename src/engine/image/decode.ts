/**
 * Attachment bytes → pixels. Every check that can fail on user input (size, format, dimensions) runs on the header
 * before any pixel is decoded, and fails with a `BadRequestError` whose message is shown to the user as is.
 */
import sharp from 'sharp';
import type { Metadata, OutputInfo, Sharp } from 'sharp';
import { BadRequestError } from '../../queue/job.js';
import { MAX_SIDE, describeBytes, describePixelLimit, resolveLimits, type ImageLimits } from './limits.js';
import { pilLuma } from './gray.js';
import { resizeGray, type Size } from './pil-resample.js';
import { formatLabel, sniffImage, type ImageFormat } from './sniff.js';
import type { RgbImage } from './types.js';

export interface DecodedImage extends RgbImage {
  /** The file had an alpha channel (it has been flattened onto white). */
  hasAlpha: boolean;
  format: ImageFormat;
}

export interface DecodedMask {
  /** One byte per pixel, PIL mode "L": 255 = repaint, 0 = keep. */
  mask: Uint8Array;
  width: number;
  height: number;
  /** Set when the mask's size differed from the requested one and it was resized (PIL LANCZOS, as diffusers does). */
  resized: { from: Size; to: Size } | null;
}

const SUPPORTED = 'PNG, JPEG, WebP, GIF or AVIF';
// sharp's prebuilt libheif decodes AV1 (AVIF) only; HEVC-coded HEIC photos fail at the header or at decode.
const HEIC_UNSUPPORTED = `HEIC photos aren't supported; send a ${SUPPORTED} image (on iPhone: Settings › Camera › Formats › Most Compatible)`;
const WHITE = { r: 255, g: 255, b: 255 };

interface Probed {
  format: ImageFormat;
  width: number;
  height: number;
  hasAlpha: boolean;
}

/** Size, format and dimension checks; reads only the header. */
async function probe(bytes: Uint8Array, limits: ImageLimits): Promise<Probed> {
  if (bytes.length > limits.maxBytes) {
    throw new BadRequestError(`That file is ${describeBytes(bytes.length)}; the limit is ${describeBytes(limits.maxBytes)}`);
  }
  const sniffed = sniffImage(bytes);
  if (sniffed.kind === 'other') throw new BadRequestError(`That file isn't an image I can read (got ${sniffed.what})`);
  if (sniffed.kind === 'unsupported-image') {
    throw new BadRequestError(`${sniffed.label} images aren't supported; send a ${SUPPORTED} image`);
  }
  const { format } = sniffed;
  let meta: Metadata;
  try {
    // No pixel limit here: the header must be read to give the user the real dimensions.
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    if (format === 'heif') throw new BadRequestError(HEIC_UNSUPPORTED);
    throw new BadRequestError(`That ${formatLabel(format)} file looks damaged; I couldn't read it`);
  }
  const { width, height } = meta.autoOrient ?? meta;
  if (!(width > 0 && height > 0)) throw new BadRequestError(`That ${formatLabel(format)} file looks damaged; I couldn't read it`);
  if (width * height > limits.maxPixels || width > MAX_SIDE || height > MAX_SIDE) {
    throw new BadRequestError(`Image is ${width}×${height}; the limit is ${describePixelLimit(limits.maxPixels)}`);
  }
  return { format, width, height, hasAlpha: meta.hasAlpha };
}

/** A sharp pipeline on checked bytes: first frame only, EXIF orientation applied, sRGB. */
function pipeline(bytes: Uint8Array, limits: ImageLimits): Sharp {
  // limitInputPixels again as defence in depth: the header was checked, the decoder enforces it too.
  return sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'error', pages: 1 }).autoOrient();
}

async function rawPixels(img: Sharp, format: ImageFormat): Promise<{ data: Uint8Array; info: OutputInfo }> {
  try {
    const { data, info } = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), info };
  } catch {
    if (format === 'heif') throw new BadRequestError(HEIC_UNSUPPORTED);
    throw new BadRequestError(`That ${formatLabel(format)} file looks damaged or cut short; I couldn't decode it`);
  }
}

/**
 * Decodes an image attachment to 8-bit sRGB RGB (HWC). The format comes from the bytes, not the file name; EXIF
 * orientation is applied; transparency is flattened onto white; animations give their first frame.
 */
export async function decodeImage(bytes: Uint8Array, limits?: Partial<ImageLimits>): Promise<DecodedImage> {
  const lim = resolveLimits(limits);
  const probed = await probe(bytes, lim);
  const img = pipeline(bytes, lim).flatten({ background: WHITE }).toColourspace('srgb').removeAlpha();
  const { data, info } = await rawPixels(img, probed.format);
  if (info.channels !== 3) throw new Error(`decodeImage: expected 3 channels from sharp, got ${info.channels}`);
  return { width: info.width, height: info.height, rgb: data, hasAlpha: probed.hasAlpha, format: probed.format };
}

/**
 * PIL's `convert("L")` of RGB or RGBA pixels, plus AUTOMATIC1111's alpha
 * rule: any pixel that is not fully opaque counts as repaint (white), so a picture with the area to redo erased
 * works as a mask.
 */
function maskLuma(data: Uint8Array, channels: 3 | 4, plane: number): Uint8Array {
  const out = new Uint8Array(plane);
  for (let i = 0, p = 0; i < plane; i++, p += channels) {
    if (channels === 4 && (data[p + 3] as number) < 255) {
      out[i] = 255;
      continue;
    }
    out[i] = pilLuma(data[p] as number, data[p + 1] as number, data[p + 2] as number);
  }
  return out;
}

/**
 * Decodes an inpainting mask (white = repaint) to one byte per pixel at `width`×`height`. Transparent areas of a
 * mask with alpha are repaint areas. A mask of another size is resized with PIL's LANCZOS filter, as diffusers'
 * mask processor does; `resized` tells the caller so it can say so.
 */
export async function decodeMask(
  bytes: Uint8Array, width: number, height: number, limits?: Partial<ImageLimits>,
): Promise<DecodedMask> {
  const lim = resolveLimits(limits);
  const probed = await probe(bytes, lim);
  const img = pipeline(bytes, lim).toColourspace('srgb');
  const { data, info } = await rawPixels(img, probed.format);
  if (info.channels !== 3 && info.channels !== 4) throw new Error(`decodeMask: unexpected ${info.channels} channels`);
  const luma = maskLuma(data, info.channels, info.width * info.height);
  if (info.width === width && info.height === height) return { mask: luma, width, height, resized: null };
  const mask = resizeGray(luma, info.width, info.height, { width, height }, 'lanczos');
  return { mask, width, height, resized: { from: { width: info.width, height: info.height }, to: { width, height } } };
}
