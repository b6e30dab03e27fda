/**
 * Reads a diffusers/Optimum ONNX model folder: which components it has, their configs, and the facts the pipelines
 * need (family, latent channels, VAE scale and shift, prediction type, default size). Everything comes from the
 * folder's own files, never from its name.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, basename, resolve } from 'node:path';
import { ModelFolderError } from './onnx/session.js';

export type Family = 'sd' | 'sdxl' | 'sd3' | 'upscale';

export type JsonObject = Record<string, unknown>;

export interface ModelInfo {
  dir: string;
  name: string;
  pipelineClass: string;
  family: Family;
  /** Components present on disk: text_encoder, unet, vae_decoder, … */
  components: Set<string>;
  /** The first-stage decoder: `vae_decoder` (KL autoencoder) or `vqvae_decoder` (VQ, latent-diffusion folders). */
  decoder: 'vae_decoder' | 'vqvae_decoder';
  /** The first text encoder: `text_encoder` (CLIP) or `bert` (latent-diffusion's LDMBert). */
  textEncoder: 'text_encoder' | 'bert';
  unetConfig: JsonObject;
  vaeConfig: JsonObject;
  schedulerConfig: JsonObject;
  modelIndex: JsonObject;
  latentChannels: number;
  /** Input channels of the denoiser: 4 (plain), 9 (inpaint), 5 (depth), 7 (x4 upscaler), 16 (SD3). */
  unetInChannels: number;
  vaeScaleFactor: number;
  scalingFactor: number;
  shiftFactor: number | null;
  predictionType: string;
  defaultWidth: number;
  defaultHeight: number;
  forceZerosForEmptyPrompt: boolean;
}

export function readJson(path: string): JsonObject {
  if (!existsSync(path)) throw new ModelFolderError(`missing file ${path}`);
  try {
    const v: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as JsonObject;
  } catch (e) {
    throw new ModelFolderError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

function optionalJson(path: string): JsonObject {
  return existsSync(path) ? readJson(path) : {};
}

const COMPONENTS = [
  'text_encoder', 'text_encoder_2', 'text_encoder_3', 'tokenizer', 'tokenizer_2', 'tokenizer_3', 'unet', 'transformer',
  'vae_encoder', 'vae_decoder', 'scheduler', 'low_res_scheduler', 'controlnet', 'depth_estimator', 'feature_extractor',
  'vqvae_decoder', 'bert', 'image_encoder', 'image_normalizer', 'image_noising_scheduler',
] as const;

export function num(obj: JsonObject, key: string, fallback: number): number {
  const v = obj[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
}

export function readModelInfo(dirIn: string): ModelInfo {
  const dir = resolve(dirIn);
  if (!existsSync(dir)) throw new ModelFolderError(`model folder ${dir} does not exist`);
  const modelIndex = readJson(join(dir, 'model_index.json'));
  const components = new Set<string>(COMPONENTS.filter((c) => existsSync(join(dir, c))));
  const denoiser = components.has('transformer') ? 'transformer' : 'unet';
  const decoder = components.has('vqvae_decoder') && !components.has('vae_decoder') ? 'vqvae_decoder' : 'vae_decoder';
  const textEncoder = components.has('bert') && !components.has('text_encoder') ? 'bert' : 'text_encoder';
  for (const required of [denoiser, decoder, 'scheduler']) {
    if (!components.has(required)) throw new ModelFolderError(`${dir}: missing the ${required}/ folder`);
  }
  for (const c of [denoiser, decoder, textEncoder, 'vae_encoder'] as const) {
    if (components.has(c) && !existsSync(join(dir, c, 'model.onnx'))) throw new ModelFolderError(`missing file ${join(dir, c, 'model.onnx')}`);
  }
  const unetConfig = optionalJson(join(dir, denoiser, 'config.json'));
  const vaeConfig = { ...optionalJson(join(dir, 'vae_encoder', 'config.json')), ...optionalJson(join(dir, decoder, 'config.json')) };
  const schedulerConfig = readJson(join(dir, 'scheduler', 'scheduler_config.json'));
  const pipelineClass = String(modelIndex['_class_name'] ?? 'StableDiffusionPipeline');

  const blocks = Array.isArray(vaeConfig['block_out_channels']) ? (vaeConfig['block_out_channels'] as unknown[]).length : 4;
  const vaeScaleFactor = 2 ** (blocks - 1);
  const latentChannels = num(vaeConfig, 'latent_channels', denoiser === 'transformer' ? 16 : 4);
  const unetInChannels = num(unetConfig, 'in_channels', latentChannels);
  const sampleSize = num(unetConfig, 'sample_size', 64);

  let family: Family = 'sd';
  if (denoiser === 'transformer') family = 'sd3';
  else if (unetConfig['addition_embed_type'] === 'text_time' || components.has('text_encoder_2')) family = 'sdxl';
  else if (unetInChannels === 7 || components.has('low_res_scheduler')) family = 'upscale';

  const shift = vaeConfig['shift_factor'];
  return {
    dir,
    name: basename(dir),
    pipelineClass,
    family,
    components,
    decoder,
    textEncoder,
    unetConfig,
    vaeConfig,
    schedulerConfig,
    modelIndex,
    latentChannels,
    unetInChannels,
    vaeScaleFactor,
    // Older exports lack scaling_factor; SD1/2's value is the one ORT falls back to as well.
    scalingFactor: num(vaeConfig, 'scaling_factor', 0.18215),
    shiftFactor: typeof shift === 'number' ? shift : null,
    predictionType: String(schedulerConfig['prediction_type'] ?? 'epsilon'),
    defaultWidth: sampleSize * vaeScaleFactor,
    defaultHeight: sampleSize * vaeScaleFactor,
    forceZerosForEmptyPrompt: modelIndex['force_zeros_for_empty_prompt'] === true,
  };
}
