/**
 * Stable Diffusion x4 upscaler, as diffusers' StableDiffusionUpscalePipeline (0.30.3): the low-resolution image,
 * noised to `noise_level` by the low_res_scheduler, is concatenated to the latents (which have the low-res size) and
 * its noise level is the UNet's class label; the /4 VAE decodes to four times the input size.
 */
import { join } from 'node:path';
import type { LoadedModel } from '../loaded-model.js';
import { readJson } from '../model-folder.js';
import { createScheduler, effectiveConfig } from '../sampling/index.js';
import { alphasCumprod } from '../sampling/noise-schedule.js';
import { TorchGenerator } from '../sampling/torch-rng.js';
import { catBatch, catChannels, repeatBatch, sliceBatch, type Tensor } from '../tensor.js';
import { denoise, encodePromptBatch, noiseSampler, randnPerImage, runDenoiser, vaeDecode } from './steps.js';
import type { PipelineOutput, PipelineParams } from './types.js';
import { BadRequestError } from '../../queue/job.js';

const f32 = Math.fround;

/** Inputs above this side would decode to more than 2048 px a side. */
export const MAX_UPSCALE_INPUT_SIDE = 512;

export async function runUpscaleX4(model: LoadedModel, p: PipelineParams): Promise<PipelineOutput> {
  const { info } = model;
  if (!p.init) throw new BadRequestError('Upscaling needs an image.');
  if (p.width > MAX_UPSCALE_INPUT_SIDE || p.height > MAX_UPSCALE_INPUT_SIDE) {
    throw new BadRequestError(`That image is ${p.width}×${p.height}; the x4 upscaler takes at most ${MAX_UPSCALE_INPUT_SIDE}×${MAX_UPSCALE_INPUT_SIDE} (the result is 4× larger).`);
  }
  const maxNoise = typeof info.modelIndex['max_noise_level'] === 'number' ? (info.modelIndex['max_noise_level'] as number) : 350;
  const noiseLevel = p.noiseLevel ?? 20;
  if (noiseLevel < 0 || noiseLevel > maxNoise) throw new BadRequestError(`Noise level must be between 0 and ${maxNoise} (got ${noiseLevel}).`);
  const notes: string[] = [];
  const n = p.seeds.length;
  const h = p.height;
  const w = p.width;
  const latentShape = [info.latentChannels, h, w];

  let t0 = performance.now();
  const cfg = p.guidance > 1;
  const embeds = await encodePromptBatch(model, p.prompt, p.negativePrompt, n, cfg, notes);
  const textMs = performance.now() - t0;

  // Noise the low-res image (first draw of each generator) with the low_res_scheduler's DDPM add_noise.
  const generators = p.seeds.map((s) => new TorchGenerator(s));
  const lowResConfig = effectiveConfig('DDPMScheduler', readJson(join(info.dir, 'low_res_scheduler', 'scheduler_config.json')));
  const acp = alphasCumprod(lowResConfig)[noiseLevel]!;
  const a = f32(Math.sqrt(acp));
  const b = f32(Math.sqrt(f32(1 - acp)));
  const lowNoise = randnPerImage(generators, [3, h, w]);
  const image = repeatBatch(p.init, n);
  const noised: Tensor = { data: image.data.map((v, i) => f32(f32(a * v) + f32(b * lowNoise.data[i]!))), dims: image.dims };
  const imageCond = cfg ? catBatch([noised, noised]) : noised;
  const classLabels = new Array<number>(n * (cfg ? 2 : 1)).fill(noiseLevel);

  const scheduler = createScheduler({ sampler: p.sampler, schedule: p.schedule, folderConfig: info.schedulerConfig, steps: p.steps, seeds: p.seeds });
  const s = f32(scheduler.initNoiseSigma);
  let latents = randnPerImage(generators, latentShape);
  latents = { data: latents.data.map((v) => f32(v * s)), dims: latents.dims };

  const timing = { unetMs: 0 };
  t0 = performance.now();
  latents = await denoise({
    scheduler, timesteps: scheduler.timesteps, latents, guidance: p.guidance, guidanceRescale: p.guidanceRescale,
    noise: noiseSampler(generators, latentShape), signal: p.signal, timing, onStep: p.onStep,
    buildInput: (x) => catChannels([x, imageCond]),
    model: (input, t) => runDenoiser(model.unet, 'sample', 'out_sample', input, t, (start, count) => ({
      encoder_hidden_states: sliceBatch(embeds, start, count),
      class_labels: { ints: classLabels.slice(start, start + count), dims: [count] },
    })),
  });
  const denoiseMs = performance.now() - t0;
  t0 = performance.now();
  const images = await vaeDecode(model.vaeDecoder, latents, info.scalingFactor, info.shiftFactor, info.vaeScaleFactor);
  return { latents, images, notes, timings: { textMs, denoiseMs, unetMs: timing.unetMs, decodeMs: performance.now() - t0 }, infotext: { noiseLevel } };
}
