/**
 * Image variations with stable unCLIP, as diffusers' StableUnCLIPImg2ImgPipeline (0.30.3) computes them: the source
 * image is not VAE-encoded; its CLIP image embedding, noised to `noise_level` (image-conditioning.ts), conditions the
 * UNet through `class_labels`, next to an optional prompt. The latents start from noise as in txt2img.
 *
 * RNG order, as diffusers with a list of generators: generator 0 first draws the embedding noise [1, D] (one
 * embedding for the whole batch; the draw happens even at noise level 0), then every generator i draws its latents,
 * then the per-step noise.
 */
import type { LoadedModel } from '../loaded-model.js';
import { encodeImage, noiseImageEmbeds } from '../image-conditioning.js';
import { createScheduler } from '../sampling/index.js';
import { TorchGenerator } from '../sampling/torch-rng.js';
import { catBatch, repeatBatch, sliceBatch, type Tensor } from '../tensor.js';
import { denoise, encodePromptBatch, noiseSampler, runDenoiser, startNoise, vaeDecode } from './steps.js';
import type { PipelineOutput, PipelineParams } from './types.js';
import { BadRequestError } from '../../queue/job.js';

const f32 = Math.fround;

/** diffusers' default noise_level for StableUnCLIPImg2ImgPipeline. */
const DEFAULT_UNCLIP_NOISE_LEVEL = 0;

export async function runImageVariation(model: LoadedModel, p: PipelineParams): Promise<PipelineOutput> {
  const { info } = model;
  const cond = model.imageConditioning;
  if (!cond) throw new Error(`${info.name} has no image encoder`);
  if (!p.initImage) throw new BadRequestError('An image variation needs an image: attach one or reply to one.');
  const noiseLevel = p.noiseLevel ?? DEFAULT_UNCLIP_NOISE_LEVEL;
  const maxLevel = cond.alphasCumprod.length - 1;
  if (!Number.isInteger(noiseLevel) || noiseLevel < 0 || noiseLevel > maxLevel) {
    throw new BadRequestError(`Noise level must be a whole number from 0 to ${maxLevel} (got ${noiseLevel}).`);
  }
  const notes: string[] = [];
  const n = p.seeds.length;
  const latentShape = [info.latentChannels, p.height / info.vaeScaleFactor, p.width / info.vaeScaleFactor];
  const cfg = p.guidance > 1;

  // 1. Prompt (empty by default): [negative × n, prompt × n]; "" when no negative prompt is given.
  let t0 = performance.now();
  const embeds = await encodePromptBatch(model, p.prompt, p.negativePrompt, n, cfg, notes);

  // 2. Image embedding, noised with generator 0; the negative half of CFG is all zeros (noise-level part included).
  const generators = p.seeds.map((s) => new TorchGenerator(s));
  const image = await encodeImage(cond, p.initImage);
  const embedNoise = generators[0]!.randn(image.dims);
  const noised = repeatBatch(noiseImageEmbeds(cond, image, embedNoise, noiseLevel), n);
  const classLabels = cfg ? catBatch([{ data: new Float32Array(noised.data.length), dims: noised.dims }, noised]) : noised;
  const textMs = performance.now() - t0;

  // 3. Latents from noise, as txt2img.
  const scheduler = createScheduler({ sampler: p.sampler, schedule: p.schedule, folderConfig: info.schedulerConfig, steps: p.steps, seeds: p.seeds });
  const sigma = f32(scheduler.initNoiseSigma);
  const start = startNoise(generators, latentShape, p.variation ?? null);
  let latents: Tensor = { data: start.data.map((v) => f32(v * sigma)), dims: start.dims };

  const timing = { unetMs: 0 };
  t0 = performance.now();
  latents = await denoise({
    scheduler, timesteps: scheduler.timesteps, latents, guidance: p.guidance, guidanceRescale: p.guidanceRescale,
    noise: noiseSampler(generators, latentShape), signal: p.signal, timing, onStep: p.onStep,
    model: (input, t) => runDenoiser(model.unet, 'sample', 'out_sample', input, t, (s, count) => ({
      encoder_hidden_states: sliceBatch(embeds, s, count),
      class_labels: sliceBatch(classLabels, s, count),
    })),
  });
  const denoiseMs = performance.now() - t0;
  t0 = performance.now();
  const images = await vaeDecode(model.vaeDecoder, latents, info.scalingFactor, info.shiftFactor, info.vaeScaleFactor);
  return {
    latents, images, notes, timings: { textMs, denoiseMs, unetMs: timing.unetMs, decodeMs: performance.now() - t0 },
    infotext: { noiseLevel, denoisingStrength: null },
  };
}
