/**
 * Depth-conditioned img2img (stable-diffusion-2-depth), as diffusers' StableDiffusionDepth2ImgPipeline (0.30.3):
 * the depth of the init image (from the folder's depth estimator, or a map the user attached) is resized bicubically
 * to the latent size, normalised per image to [-1, 1] and fed to the 5-channel UNet after the latents.
 */
import type { LoadedModel } from '../loaded-model.js';
import { predictDepth } from '../depth-estimator.js';
import { createScheduler, img2imgTimesteps } from '../sampling/index.js';
import { TorchGenerator } from '../sampling/torch-rng.js';
import { catBatch, catChannels, repeatBatch, sliceBatch, type Tensor } from '../tensor.js';
import { interpolateBicubic } from '../image/torch-interpolate.js';
import { denoise, encodePromptBatch, noiseSampler, runDenoiser, startNoise, vaeDecode, vaeEncodeSample } from './steps.js';
import type { PipelineOutput, PipelineParams } from './types.js';
import { BadRequestError } from '../../queue/job.js';

const f32 = Math.fround;

/** prepare_depth_map: depth → bicubic to latent size → per-image min–max to [-1, 1]. */
async function depthCondition(model: LoadedModel, p: PipelineParams, lh: number, lw: number): Promise<Tensor> {
  let depth: Float32Array;
  let dh: number;
  let dw: number;
  if (p.depthMap) {
    ({ data: depth, height: dh, width: dw } = p.depthMap);
  } else {
    if (!p.initImage) throw new BadRequestError('Depth-to-image needs an image.');
    if (!model.depthEstimatorDir) {
      throw new BadRequestError(`${model.info.name} has no depth estimator (depth_estimator/ folder): attach a depth map instead.`);
    }
    ({ data: depth, height: dh, width: dw } = await predictDepth(await model.depthEstimator(), p.initImage));
  }
  const small = interpolateBicubic(depth, { planes: 1, height: dh, width: dw }, lh, lw);
  let min = Infinity;
  let max = -Infinity;
  for (const v of small) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  if (!(max > min)) throw new BadRequestError('The depth map is flat (every pixel at the same depth): nothing to condition on.');
  const range = f32(max - min);
  return { data: small.map((v) => f32(f32(f32(2 * f32(v - min)) / range) - 1)), dims: [1, 1, lh, lw] };
}

export async function runDepth2Img(model: LoadedModel, p: PipelineParams): Promise<PipelineOutput> {
  const { info } = model;
  if (!p.init) throw new BadRequestError('Depth-to-image needs an image to start from.');
  const notes: string[] = [];
  const n = p.seeds.length;
  const lh = p.height / info.vaeScaleFactor;
  const lw = p.width / info.vaeScaleFactor;
  const latentShape = [info.latentChannels, lh, lw];

  let t0 = performance.now();
  const cfg = p.guidance > 1;
  const embeds = await encodePromptBatch(model, p.prompt, p.negativePrompt, n, cfg, notes);
  const textMs = performance.now() - t0;

  const depth = repeatBatch(await depthCondition(model, p, lh, lw), n * (cfg ? 2 : 1));

  const scheduler = createScheduler({ sampler: p.sampler, schedule: p.schedule, folderConfig: info.schedulerConfig, steps: p.steps, seeds: p.seeds, ...(p.init ? { strength: p.strength } : {}) });
  const { timesteps } = img2imgTimesteps(scheduler, p.steps, p.strength);
  if (timesteps.length === 0) throw new BadRequestError(`Strength ${p.strength} with ${p.steps} steps leaves no denoising step: raise one of them.`);
  const generators = p.seeds.map((s) => new TorchGenerator(s));
  const encoded = [];
  for (const g of generators) encoded.push(await vaeEncodeSample(model.vaeEncoder!, p.init, g, info.scalingFactor, info.shiftFactor));
  const x0 = catBatch(encoded);
  const noise = startNoise(generators, latentShape, p.variation ?? null);
  let latents: Tensor = { data: scheduler.addNoise(x0.data, noise.data, timesteps[0]!), dims: x0.dims };

  const timing = { unetMs: 0 };
  t0 = performance.now();
  latents = await denoise({
    scheduler, timesteps, latents, guidance: p.guidance, guidanceRescale: p.guidanceRescale,
    noise: noiseSampler(generators, latentShape), signal: p.signal, timing, onStep: p.onStep,
    buildInput: (x) => catChannels([x, depth]),
    model: (input, t) => runDenoiser(model.unet, 'sample', 'out_sample', input, t, (start, count) => ({
      encoder_hidden_states: sliceBatch(embeds, start, count),
    })),
  });
  const denoiseMs = performance.now() - t0;
  t0 = performance.now();
  const images = await vaeDecode(model.vaeDecoder, latents, info.scalingFactor, info.shiftFactor, info.vaeScaleFactor);
  return { latents, images, notes, timings: { textMs, denoiseMs, unetMs: timing.unetMs, decodeMs: performance.now() - t0 } };
}
