/**
 * SD3 inpainting (and so outpainting) as diffusers' StableDiffusion3InpaintPipeline (0.30.3) prepares and runs it:
 *
 * - 16-channel transformer (an ordinary SD3 folder): after every step the known region is replaced by the image
 *   latents noised to the next timestep with the flow scheduler's scale_noise, x = (1 − m)·proper + m·x.
 * - 33-channel transformer (an inpainting fine-tune): [x, mask, masked-image latents] goes in every step, no blend.
 *
 * Timesteps follow SD3's strength rule (int() after the subtraction) and the scheduler's begin index is always set,
 * even at strength 1, so scale_noise picks the sigma of the step just reached. RNG order per generator i: image
 * latents (generator 0 only; encoded whenever the blend needs them or strength < 1), then the start noise; the
 * masked image is encoded last, again with generator 0. Both latents are (x − shift) × scale.
 */
import type { LoadedModel } from '../loaded-model.js';
import type { Scheduler } from '../sampling/scheduler.js';
import { flowImg2ImgStart } from '../sampling/samplers/flow-match-euler.js';
import type { TorchGenerator } from '../sampling/torch-rng.js';
import type { PipelineParams } from './types.js';
import type { Tensor } from '../tensor.js';
import { BadRequestError } from '../../queue/job.js';
import { blendKnownRegion, inpaintChannels, prepareInpaintLatents } from './stable-diffusion.js';

/** Transformer input channels of an SD3 inpainting fine-tune: latents + mask + masked-image latents. */
export function isSd3InpaintTransformer(model: LoadedModel): boolean {
  return model.info.unetInChannels === model.info.latentChannels * 2 + 1;
}

export interface Sd3InpaintStart {
  timesteps: number[];
  latents: Tensor;
  /** 33 channels: adds mask and masked-image latents to the (CFG) model batch. */
  buildInput?: (x: Tensor) => Tensor;
  /** 16 channels: the known region noised back in after step i. */
  afterStep?: (i: number, x: Tensor) => Tensor;
}

export async function prepareSd3Inpaint(
  model: LoadedModel, init: Tensor, mask: Tensor, strength: number, steps: number, scheduler: Scheduler,
  generators: readonly TorchGenerator[], latentShape: readonly number[], cfg: boolean, variation: PipelineParams['variation'] = null,
): Promise<Sd3InpaintStart> {
  const { info } = model;
  if (!model.vaeEncoder) throw new BadRequestError(`${info.name} has no vae_encoder, so it cannot inpaint.`);
  const concat = isSd3InpaintTransformer(model);
  if (!concat && info.unetInChannels !== info.latentChannels) {
    throw new BadRequestError(`${info.name}'s transformer takes ${info.unetInChannels} channels: SD3 inpainting needs ${info.latentChannels} or ${info.latentChannels * 2 + 1}.`);
  }
  const tStart = flowImg2ImgStart(steps, strength) * scheduler.order;
  const timesteps = scheduler.timesteps.slice(tStart);
  if (timesteps.length === 0) throw new BadRequestError(`Strength ${strength} with ${steps} steps leaves no denoising step: raise one of them.`);
  scheduler.setBeginIndex(tStart);

  // The same draws and latents as SD1.x/SDXL inpaint (initNoiseSigma is 1 for the flow schedulers).
  const start = await prepareInpaintLatents(model, init, mask, { scheduler, timesteps, generators, latentShape, strength, inpaintUnet: concat, variation });
  const { latents, imageLatents, initialNoise, maskLatent, maskedImageLatents } = start;
  if (concat) return { timesteps, latents, buildInput: inpaintChannels(maskLatent, maskedImageLatents, cfg ? 2 : 1) };
  return { timesteps, latents, afterStep: (i, x) => blendKnownRegion(scheduler, x, imageLatents!, initialNoise, maskLatent, timesteps, i) };
}
