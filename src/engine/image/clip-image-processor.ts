/**
 * transformers' CLIPImageProcessor, from a folder's `preprocessor_config.json`: PIL resize of the uint8 image (shortest
 * edge to `size`, or to an exact height × width), center crop (zero-padded when the image is smaller), rescale and
 * normalise, as NCHW float32. Each step rounds as transformers' numpy code does (rescale in float64 then float32,
 * normalise in float32).
 */
import type { Tensor } from '../tensor.js';
import type { RgbImage } from './types.js';
import { resizeRgb, type PilFilter, type Size } from './pil-resample.js';

const f32 = Math.fround;

/** PIL's resample codes, as transformers stores them in `resample`. */
export const PIL_RESAMPLE: Record<number, PilFilter> = { 0: 'box', 1: 'lanczos', 2: 'bilinear', 3: 'bicubic', 4: 'box', 5: 'hamming' };

export interface ClipProcessorConfig {
  resize: { shortestEdge: number } | Size | null;
  filter: PilFilter;
  crop: Size | null;
  rescale: number | null;
  normalize: { mean: [number, number, number]; std: [number, number, number] } | null;
}

const OPENAI_CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
const OPENAI_CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/** Reads a CLIPImageProcessor config (old int sizes too: `size: 224` = shortest edge, `crop_size: 224` = square). */
export function clipProcessorConfig(json: Record<string, unknown>): ClipProcessorConfig {
  const size = json['size'] ?? { shortest_edge: 224 };
  const resize = json['do_resize'] === false ? null
    : typeof size === 'number' ? { shortestEdge: size }
    : typeof size === 'object' && size !== null && typeof (size as Record<string, unknown>)['shortest_edge'] === 'number'
      ? { shortestEdge: (size as { shortest_edge: number }).shortest_edge }
      : sizeOf(size, 'size');
  const cropSize = json['crop_size'] ?? { height: 224, width: 224 };
  const crop = json['do_center_crop'] === false ? null : typeof cropSize === 'number' ? { width: cropSize, height: cropSize } : sizeOf(cropSize, 'crop_size');
  const resample = Number(json['resample'] ?? 3);
  const filter = PIL_RESAMPLE[resample];
  if (!filter) throw new Error(`preprocessor_config.json: unsupported resample ${resample}`);
  return {
    resize,
    filter,
    crop,
    rescale: json['do_rescale'] === false ? null : Number(json['rescale_factor'] ?? 1 / 255),
    normalize: json['do_normalize'] === false ? null : {
      mean: triple(json['image_mean'], OPENAI_CLIP_MEAN, 'image_mean'),
      std: triple(json['image_std'], OPENAI_CLIP_STD, 'image_std'),
    },
  };
}

function sizeOf(v: unknown, key: string): Size {
  const o = v as Record<string, unknown> | null;
  if (o && typeof o['height'] === 'number' && typeof o['width'] === 'number') return { height: o['height'], width: o['width'] };
  throw new Error(`preprocessor_config.json: cannot read "${key}" ${JSON.stringify(v)}`);
}

function triple(v: unknown, fallback: [number, number, number], key: string): [number, number, number] {
  if (v === undefined || v === null) return fallback;
  if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number')) return v as [number, number, number];
  throw new Error(`preprocessor_config.json: "${key}" must be three numbers`);
}

/** The processor's output size for an input size: transformers' get_resize_output_image_size (int() truncates). */
export function clipResizeSize(width: number, height: number, resize: ClipProcessorConfig['resize']): Size {
  if (!resize) return { width, height };
  if (!('shortestEdge' in resize)) return resize;
  const s = resize.shortestEdge;
  return width <= height
    ? { width: s, height: Math.trunc((s * height) / width) }
    : { width: Math.trunc((s * width) / height), height: s };
}

/** [1, 3, cropH, cropW] pixel values for one image. */
export function clipPixelValues(img: RgbImage, config: ClipProcessorConfig): Tensor {
  const size = clipResizeSize(img.width, img.height, config.resize);
  let rgb = size.width === img.width && size.height === img.height ? img.rgb : resizeRgb(img.rgb, img.width, img.height, size, config.filter);
  let { width: w, height: h } = size;
  if (config.crop) {
    rgb = centerCrop(rgb, w, h, config.crop);
    ({ width: w, height: h } = config.crop);
  }
  const out = new Float32Array(3 * h * w);
  const plane = h * w;
  for (let c = 0; c < 3; c++) {
    const m = config.normalize ? f32(config.normalize.mean[c]!) : 0;
    const sd = config.normalize ? f32(config.normalize.std[c]!) : 1;
    for (let i = 0; i < plane; i++) {
      let v = config.rescale === null ? rgb[i * 3 + c]! : f32(rgb[i * 3 + c]! * config.rescale);
      if (config.normalize) v = f32(f32(v - m) / sd);
      out[c * plane + i] = v;
    }
  }
  return { data: out, dims: [1, 3, h, w] };
}

/**
 * transformers' center_crop: top = (h - ch) // 2, left = (w - cw) // 2; a smaller image is first centred on a zero
 * canvas of max(h, ch) × max(w, cw), the extra row/column (odd padding) going before it.
 */
function centerCrop(rgb: Uint8Array, w: number, h: number, crop: Size): Uint8Array {
  const nh = Math.max(h, crop.height);
  const nw = Math.max(w, crop.width);
  const padTop = Math.ceil((nh - h) / 2);
  const padLeft = Math.ceil((nw - w) / 2);
  const top = Math.floor((nh - crop.height) / 2);
  const left = Math.floor((nw - crop.width) / 2);
  const out = new Uint8Array(crop.width * crop.height * 3);
  for (let y = 0; y < crop.height; y++) {
    const sy = y + top - padTop;
    if (sy < 0 || sy >= h) continue;
    for (let x = 0; x < crop.width; x++) {
      const sx = x + left - padLeft;
      if (sx < 0 || sx >= w) continue;
      for (let c = 0; c < 3; c++) out[(y * crop.width + x) * 3 + c] = rgb[(sy * w + sx) * 3 + c]!;
    }
  }
  return out;
}
