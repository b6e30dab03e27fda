/**
 * Cheap progress previews: a fixed linear map from latent channels to RGB (per-family factor matrices fitted by the
 * ComfyUI / A1111 authors, comfy/latent_formats.py), no VAE call. One preview pixel per latent pixel: 64×64 for a
 * 512² SD1.5 image. Latents are in the denoiser's space (diffusers' `latents`, already scaled/shifted).
 */
import { encodeSmallPng } from './encode.js';
import { makeGrid } from './grid.js';
import type { RgbImage } from './types.js';

export type LatentFamily = 'sd' | 'sdxl' | 'sd3' | 'x4';

interface LatentRgb {
  channels: number;
  /** channels × 3, row c = contribution of latent channel c to R, G, B. */
  factors: readonly (readonly [number, number, number])[];
  bias: readonly [number, number, number];
}

const FORMATS: Record<LatentFamily, LatentRgb> = {
  sd: {
    channels: 4,
    factors: [
      [0.3512, 0.2297, 0.3227],
      [0.325, 0.4974, 0.235],
      [-0.2829, 0.1762, 0.2721],
      [-0.212, -0.2616, -0.7177],
    ],
    bias: [0, 0, 0],
  },
  sdxl: {
    channels: 4,
    factors: [
      [0.3651, 0.4232, 0.4341],
      [-0.2533, -0.0042, 0.1068],
      [0.1076, 0.1111, -0.0362],
      [-0.3165, -0.2492, -0.2188],
    ],
    bias: [0.1084, -0.0175, -0.0011],
  },
  sd3: {
    channels: 16,
    factors: [
      [-0.0922, -0.0175, 0.0749],
      [0.0311, 0.0633, 0.0954],
      [0.1994, 0.0927, 0.0458],
      [0.0856, 0.0339, 0.0902],
      [0.0587, 0.0272, -0.0496],
      [-0.0006, 0.1104, 0.0309],
      [0.0978, 0.0306, 0.0427],
      [-0.0042, 0.1038, 0.1358],
      [-0.0194, 0.002, 0.0669],
      [-0.0488, 0.013, -0.0268],
      [0.0922, 0.0988, 0.0951],
      [-0.0278, 0.0524, -0.0542],
      [0.0332, 0.0456, 0.0895],
      [-0.0069, -0.003, -0.081],
      [-0.0596, -0.0465, -0.0293],
      [-0.1448, -0.1463, -0.1189],
    ],
    bias: [0.2394, 0.2135, 0.1925],
  },
  x4: {
    channels: 4,
    factors: [
      [-0.234, -0.3863, -0.3257],
      [0.0994, 0.0885, -0.0908],
      [-0.2833, -0.2349, -0.3741],
      [0.2523, -0.0055, -0.1651],
    ],
    bias: [0, 0, 0],
  },
};

/** Latent → RGB of one image (the latent's first `channels·h·w` values starting at `offset`). */
export function latentToRgb(latents: Float32Array, offset: number, family: LatentFamily, height: number, width: number): RgbImage {
  const { channels, factors, bias } = FORMATS[family];
  const plane = height * width;
  const rgb = new Uint8Array(plane * 3);
  // Accumulate channel by channel over whole planes: sequential memory access, no per-pixel closures.
  const acc = new Float32Array(plane * 3);
  for (let i = 0; i < plane; i++) {
    acc[3 * i] = bias[0];
    acc[3 * i + 1] = bias[1];
    acc[3 * i + 2] = bias[2];
  }
  for (let c = 0; c < channels; c++) {
    const [fr, fg, fb] = factors[c] as readonly [number, number, number];
    const base = offset + c * plane;
    for (let i = 0; i < plane; i++) {
      const v = latents[base + i] as number;
      acc[3 * i] = (acc[3 * i] as number) + v * fr;
      acc[3 * i + 1] = (acc[3 * i + 1] as number) + v * fg;
      acc[3 * i + 2] = (acc[3 * i + 2] as number) + v * fb;
    }
  }
  // [-1, 1] → [0, 255]; Uint8ClampedArray-style clamping by hand (NaN → 0).
  for (let i = 0; i < acc.length; i++) {
    const v = ((acc[i] as number) + 1) * 127.5;
    rgb[i] = v > 0 ? (v < 255 ? Math.round(v) : 255) : 0;
  }
  return { width, height, rgb };
}

/**
 * PNG preview of a batch of latents [n, channels, h, w] (n inferred from the length); several images come out as a
 * 2-column grid, like the final result.
 */
export function latentPreview(latents: Float32Array, channels: 4 | 16, height: number, width: number, family: LatentFamily): Uint8Array {
  const format = FORMATS[family];
  if (format.channels !== channels) throw new RangeError(`latentPreview: ${family} latents have ${format.channels} channels, not ${channels}`);
  const perImage = channels * height * width;
  if (latents.length === 0 || latents.length % perImage !== 0) {
    throw new RangeError(`latentPreview: ${latents.length} values is not a whole number of [${channels},${height},${width}] latents`);
  }
  const images: RgbImage[] = [];
  for (let off = 0; off < latents.length; off += perImage) images.push(latentToRgb(latents, off, family, height, width));
  const img = images.length === 1 ? (images[0] as RgbImage) : makeGrid(images, 2);
  return encodeSmallPng(img.rgb, img.width, img.height);
}
