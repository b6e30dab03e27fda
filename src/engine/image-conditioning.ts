/**
 * Stable unCLIP's image conditioning: a folder's CLIP vision encoder, its image processor settings, the normalizer's
 * mean/std and the DDPM `image_noising_scheduler`, and the arithmetic of diffusers' (0.30.3)
 * `StableUnCLIPImg2ImgPipeline.noise_image_embeddings`: scale by the normalizer, DDPM add_noise at `noise_level`,
 * unscale, then append the sinusoidal embedding of the noise level. The result is the UNet's `class_labels`.
 *
 * Folder layout (everything read from the folder, never guessed from its name):
 *   image_encoder/model.onnx                      pixel_values [B,3,H,W] -> image_embeds [B,D]
 *   feature_extractor/preprocessor_config.json   CLIPImageProcessor settings
 *   image_normalizer/mean_std.json               {"mean": [D numbers], "std": [D numbers]} (the float32 values of
 *                                                 StableUnCLIPImageNormalizer's `mean` / `std` parameters), or
 *                                                 diffusers' own diffusion_pytorch_model.safetensors (mean, std [1, D])
 *   image_noising_scheduler/scheduler_config.json DDPMScheduler config (its alphas_cumprod noise the embeds)
 *   unet/model.onnx                              takes `class_labels` float32 [B, 2D]
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ModelFolderError, ModelGraph, type Provider } from './onnx/session.js';
import { readJson } from './model-folder.js';
import { readSafetensors } from './safetensors.js';
import { clipPixelValues, clipProcessorConfig, type ClipProcessorConfig } from './image/clip-image-processor.js';
import type { RgbImage } from './image/types.js';
import { effectiveConfig } from './sampling/index.js';
import { alphasCumprod } from './sampling/noise-schedule.js';
import type { Tensor } from './tensor.js';

const f32 = Math.fround;

export interface ImageConditioning {
  encoder: ModelGraph;
  processor: ClipProcessorConfig;
  /** The normalizer's per-dimension mean and std (float32 values), length = embedding dim D. */
  mean: Float32Array;
  std: Float32Array;
  /** alphas_cumprod of the image_noising_scheduler; its length bounds the noise level. */
  alphasCumprod: Float32Array;
}

/** The pieces a folder with `image_encoder/` must have; each missing one is named in the error. */
export async function loadImageConditioning(dir: string, unet: ModelGraph, providers: readonly Provider[]): Promise<ImageConditioning> {
  const need = (rel: string, what: string): string => {
    const path = join(dir, rel);
    if (!existsSync(path)) throw new ModelFolderError(`${dir}: has image_encoder/ (stable unCLIP) but no ${rel} (${what})`);
    return path;
  };
  const encoderPath = need(join('image_encoder', 'model.onnx'), 'the CLIP vision encoder');
  const processorPath = need(join('feature_extractor', 'preprocessor_config.json'), "the CLIP image processor's settings");
  const normPath = normalizerFile(dir);
  const noisingPath = need(join('image_noising_scheduler', 'scheduler_config.json'), 'the DDPM scheduler that noises the image embeds');

  let processor: ClipProcessorConfig;
  try {
    processor = clipProcessorConfig(readJson(processorPath));
  } catch (e) {
    throw e instanceof ModelFolderError ? e : new ModelFolderError(`${processorPath}: ${(e as Error).message}`);
  }
  const { mean, std } = readNormalizer(normPath);
  if (mean.length !== std.length) throw new ModelFolderError(`${normPath}: "mean" has ${mean.length} values but "std" has ${std.length}`);
  if (std.some((v) => !(v > 0))) throw new ModelFolderError(`${normPath}: every "std" value must be positive`);
  const dim = mean.length;

  const noisingJson = readJson(noisingPath);
  const acp = alphasCumprod(effectiveConfig('DDPMScheduler', noisingJson));

  const encoder = await ModelGraph.load(encoderPath, providers);
  encoder.input('pixel_values');
  const embedsOut = encoder.requireOutput('image_embeds');
  const outDim = embedsOut.shape[embedsOut.shape.length - 1];
  if (typeof outDim === 'number' && outDim !== dim) {
    await encoder.release();
    throw new ModelFolderError(`${encoder.path}: "image_embeds" has ${outDim} dims but ${normPath} has ${dim}`);
  }
  if (!unet.has('class_labels')) {
    await encoder.release();
    throw new ModelFolderError(`${unet.path}: a stable unCLIP UNet needs a "class_labels" input (noised image embeds ‖ noise-level embedding)`);
  }
  const labelDim = unet.input('class_labels').shape.at(-1);
  if (typeof labelDim === 'number' && labelDim !== 2 * dim) {
    await encoder.release();
    throw new ModelFolderError(`${unet.path}: "class_labels" has ${labelDim} dims; image embeds of ${dim} dims need ${2 * dim}`);
  }
  return { encoder, processor, mean, std, alphasCumprod: acp };
}

const NORMALIZER_FILES = ['mean_std.json', 'diffusion_pytorch_model.safetensors'] as const;

function normalizerFile(dir: string): string {
  const found = NORMALIZER_FILES.map((f) => join(dir, 'image_normalizer', f)).find((p) => existsSync(p));
  if (!found) {
    throw new ModelFolderError(`${dir}: has image_encoder/ (stable unCLIP) but no image_normalizer/mean_std.json (the normalizer's {"mean": [...], "std": [...]}) or image_normalizer/diffusion_pytorch_model.safetensors`);
  }
  return found;
}

function readNormalizer(path: string): { mean: Float32Array; std: Float32Array } {
  if (path.endsWith('.json')) {
    const norm = readJson(path);
    return { mean: numberArray(norm['mean'], path, 'mean'), std: numberArray(norm['std'], path, 'std') };
  }
  try {
    const t = readSafetensors(path, ['mean', 'std']);
    return { mean: t.get('mean')!.data, std: t.get('std')!.data };
  } catch (e) {
    throw new ModelFolderError(`${path}: ${(e as Error).message}`);
  }
}

function numberArray(v: unknown, path: string, key: string): Float32Array {
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new ModelFolderError(`${path}: "${key}" must be a non-empty array of numbers`);
  }
  return Float32Array.from(v as number[]);
}

/** CLIP image embeds [1, D] of one image. */
export async function encodeImage(cond: ImageConditioning, image: RgbImage): Promise<Tensor> {
  const out = await cond.encoder.run({ pixel_values: clipPixelValues(image, cond.processor) }, ['image_embeds']);
  const e = out['image_embeds'];
  if (!e) throw new Error(`${cond.encoder.path}: no "image_embeds" output`);
  return { data: e.data, dims: e.dims };
}

/**
 * diffusers' get_timestep_embedding(t, dim, flip_sin_to_cos=True, downscale_freq_shift=0) for one timestep, in
 * float32 as torch computes it: freq_i = exp(-ln(10000) * i / (dim/2)), [cos(t * freq) ‖ sin(t * freq)] (+ a zero
 * for odd dims).
 */
export function timestepEmbedding(t: number, dim: number): Float32Array {
  const half = Math.floor(dim / 2);
  const out = new Float32Array(dim);
  const c = f32(-Math.log(10000));
  for (let i = 0; i < half; i++) {
    const freq = f32(Math.exp(f32(f32(c * i) / half)));
    const arg = f32(t * freq);
    out[i] = Math.cos(arg);
    out[half + i] = Math.sin(arg);
  }
  return out;
}

/**
 * noise_image_embeddings for a batch of embeds [B, D] and their noise [B, D]: ((e - mean) / std) noised to
 * `noiseLevel` (sqrt(acp) * x + sqrt(1 - acp) * noise), then * std + mean, each followed by the noise level's
 * timestep embedding -> [B, 2D].
 */
export function noiseImageEmbeds(cond: ImageConditioning, embeds: Tensor, noise: Float32Array, noiseLevel: number): Tensor {
  const [b, d] = embeds.dims as [number, number];
  if (d !== cond.mean.length) throw new Error(`image embeds have ${d} dims but the normalizer has ${cond.mean.length}`);
  const acp = cond.alphasCumprod[noiseLevel];
  if (acp === undefined || !Number.isInteger(noiseLevel) || noiseLevel < 0) throw new Error(`noise level ${noiseLevel} is outside the noising schedule`);
  const a = f32(Math.sqrt(acp));
  const s = f32(Math.sqrt(f32(1 - acp)));
  const level = timestepEmbedding(noiseLevel, d);
  const out = new Float32Array(b * 2 * d);
  for (let r = 0; r < b; r++) {
    for (let i = 0; i < d; i++) {
      const mean = cond.mean[i]!;
      const std = cond.std[i]!;
      const scaled = f32(f32(embeds.data[r * d + i]! - mean) / std);
      const noised = f32(f32(a * scaled) + f32(s * noise[r * d + i]!));
      out[r * 2 * d + i] = f32(f32(noised * std) + mean);
    }
    out.set(level, r * 2 * d + d);
  }
  return { data: out, dims: [b, 2 * d] };
}
