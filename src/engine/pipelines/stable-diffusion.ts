/**
 * Stable Diffusion 1.x / 2.x: txt2img, img2img and inpaint (9-channel inpaint UNets, and the legacy "blend the known
 * region back every step" mode for ordinary UNets), as diffusers' StableDiffusionPipeline,
 * StableDiffusionImg2ImgPipeline and StableDiffusionInpaintPipeline (0.30.3) compute them.
 *
 *   encode prompt → prepare latents (noise, or VAE latents + noise at the first timestep) → denoise → decode
 */
import type { LoadedModel } from '../loaded-model.js';
import { createScheduler, img2imgTimesteps } from '../sampling/index.js';
import type { Scheduler } from '../sampling/scheduler.js';
import { TorchGenerator } from '../sampling/torch-rng.js';
import { catBatch, catChannels, repeatBatch, sliceBatch, sliceFeeds, type Tensor } from '../tensor.js';
import {
  denoise, encodePromptBatch, noiseSampler, runDenoiser, startNoise, timestepFeed, vaeDecode, vaeEncodeSample,
} from './steps.js';
import type { PipelineParams, PipelineOutput } from './types.js';
import { BadRequestError } from '../../queue/job.js';
import { controlGuessMode, guessModeScales, residualTarget, unetResidualInputs } from '../controlnet.js';

const f32 = Math.fround;

export async function runStableDiffusion(model: LoadedModel, p: PipelineParams): Promise<PipelineOutput> {
  const { info } = model;
  const notes: string[] = [];
  const n = p.seeds.length;
  const latentShape = [info.latentChannels, p.height / info.vaeScaleFactor, p.width / info.vaeScaleFactor];
  const timing = { textMs: 0, unetMs: 0, decodeMs: 0 };
  const inpaintUnet = checkInpaintInputs(model, p);

  // 1. Prompt: [uncond × n, cond × n]. SD1/SD2 encode "" when no negative prompt is given.
  let t0 = performance.now();
  const cfg = p.guidance > 1;
  const embeds = await encodePromptBatch(model, p.prompt, p.negativePrompt, n, cfg, notes);
  timing.textMs = performance.now() - t0;

  // 2. Schedule (img2img and inpaint slice it by strength).
  const scheduler = createScheduler({ sampler: p.sampler, schedule: p.schedule, folderConfig: info.schedulerConfig, steps: p.steps, seeds: p.seeds, ...(p.init ? { strength: p.strength } : {}) });
  const startsFromImage = p.init !== null;
  const { timesteps } = startsFromImage ? img2imgTimesteps(scheduler, p.steps, p.strength) : { timesteps: [...scheduler.timesteps] };
  if (timesteps.length === 0) throw new BadRequestError(`Strength ${p.strength} with ${p.steps} steps leaves no denoising step: raise one of them.`);

  // 3. Latents. Draw order per generator i: VAE sample, then noise, then per-step noise (diffusers' order).
  const generators = p.seeds.map((s) => new TorchGenerator(s));
  const noise = noiseSampler(generators, latentShape);
  let latents: Tensor;
  let imageLatents: Tensor | null = null;
  let maskLatent: Tensor | null = null;
  let maskedImageLatents: Tensor | null = null;
  let initialNoise: Tensor | null = null;
  if (!p.init) {
    latents = scaleLatents(startNoise(generators, latentShape, p.variation ?? null), scheduler.initNoiseSigma);
  } else if (!p.mask) {
    const encoded = [];
    for (const g of generators) encoded.push(await vaeEncodeSample(model.vaeEncoder!, p.init, g, info.scalingFactor, info.shiftFactor));
    imageLatents = catBatch(encoded);
    initialNoise = startNoise(generators, latentShape, p.variation ?? null);
    latents = { data: scheduler.addNoise(imageLatents.data, initialNoise.data, timesteps[0]!), dims: imageLatents.dims };
  } else {
    ({ latents, imageLatents, initialNoise, maskLatent, maskedImageLatents } = await prepareInpaintLatents(model, p.init, p.mask, {
      scheduler, timesteps, generators, latentShape, strength: p.strength, inpaintUnet, variation: p.variation ?? null,
    }));
  }

  // 4. Denoise.
  const unet = model.unet;
  const cfgFactor = cfg ? 2 : 1;
  const extraChannels = inpaintUnet && maskLatent && maskedImageLatents ? inpaintChannels(maskLatent, maskedImageLatents, cfgFactor) : undefined;
  const legacyBlend = !inpaintUnet && maskLatent !== null;
  const control = controlResiduals(model, p, { encoder_hidden_states: embeds }, n, cfg);
  t0 = performance.now();
  latents = await denoise({
    scheduler, timesteps, latents, guidance: p.guidance, guidanceRescale: p.guidanceRescale, noise,
    signal: p.signal, timing,
    buildInput: extraChannels,
    model: async (input, t, i) => {
      const residuals = control ? await control(input, t, i, timesteps.length) : {};
      return runDenoiser(unet, 'sample', 'out_sample', input, t, (start, count) =>
        sliceFeeds({ encoder_hidden_states: embeds, ...residuals }, start, count));
    },
    afterStep: legacyBlend ? (i, x) => blendKnownRegion(scheduler, x, imageLatents!, initialNoise!, maskLatent!, timesteps, i) : undefined,
    onStep: p.onStep,
  });
  const denoiseMs = performance.now() - t0;

  t0 = performance.now();
  const images = await vaeDecode(model.vaeDecoder, latents, info.scalingFactor, info.shiftFactor, info.vaeScaleFactor);
  timing.decodeMs = performance.now() - t0;
  return { latents, images, notes, timings: { textMs: timing.textMs, denoiseMs, unetMs: timing.unetMs, decodeMs: timing.decodeMs } };
}

/**
 * ControlNet residuals for one step, as diffusers' ControlNet pipelines (txt2img, img2img, inpaint) compute them: each
 * ControlNet sees the scaled latent batch (the latent channels only, before an inpaint UNet's mask channels) and its
 * control image, with scale × keep_i where keep_i drops to 0 outside [start, end] of the steps; several ControlNets'
 * residuals are summed in order (MultiControlNetModel). Guess mode (see controlGuessMode): with CFG the ControlNets
 * see only the conditional half and the unconditional half gets zero residuals. A UNet that takes residuals but got
 * no control gets the model's default ControlNet's zero residuals (scale 0: one run for their shapes, then skipped). `conditions`: the text conditioning feeds of
 * the whole (CFG) batch, as the ControlNets take them: `encoder_hidden_states`, plus SDXL's `text_embeds` / `time_ids`.
 */
export function controlResiduals(model: LoadedModel, p: PipelineParams, conditions: Readonly<Record<string, Tensor>>, n: number, cfg: boolean) {
  let controls = p.controls ?? [];
  if (controls.length === 0) {
    if (unetResidualInputs(model.unet).length === 0) return null;
    const graph = model.defaultControlNet;
    if (!graph) throw new BadRequestError(`${model.info.name}'s UNet takes ControlNet residuals but the model has no ControlNet: attach one in the models file.`);
    controls = [{ graph, image: { data: new Float32Array(3 * p.height * p.width), dims: [1, 3, p.height, p.width] }, scale: 0, start: 0, end: 1 }];
  }
  const guess = controlGuessMode(controls, p.controlGuessMode === true);
  const condOnly = guess.on && cfg;
  const rows = condOnly || !cfg ? n : 2 * n;
  const images = controls.map((c) => repeatBatch(c.image, rows));
  const cnConditions = condOnly ? sliceFeeds(conditions, n, n) : conditions;
  const latentChannels = model.info.latentChannels;
  // Zero residuals shaped like a step's: a ControlNet at scale 0 (outside its window, or the stand-in for a job
  // without control) adds exactly nothing, so once the shapes are known its run is skipped.
  let idle: Record<string, Tensor> | null = null;
  return async (input: Tensor, t: number, i: number, total: number): Promise<Record<string, Tensor>> => {
    const batch = condOnly ? sliceBatch(input, n, n) : input;
    const sample = batch.dims[1] === latentChannels ? batch : sliceChannels(batch, latentChannels);
    const sum: Record<string, Tensor> = {};
    for (const [k, c] of controls.entries()) {
      const keep = i / total < c.start || (i + 1) / total > c.end ? 0 : 1;
      const scale = c.scale * keep;
      if (scale === 0 && idle) continue;
      const perResidual = guess.on && !guess.pooled[k];
      const out = await c.graph.run({
        ...cnConditions, sample, timestep: timestepFeed(c.graph, t, rows), controlnet_cond: images[k]!,
        // Guess mode scales each residual separately: the graph runs at scale 1 and the outputs are scaled below.
        conditioning_scale: { data: Float32Array.of(perResidual ? 1 : scale), dims: [] },
      });
      const scales = perResidual ? guessModeScales(Object.keys(out), scale) : null;
      // The session's outputs are fresh arrays: scale and sum in place (same float32 rounding as new arrays).
      for (const [name, v] of Object.entries(out)) {
        const target = residualTarget(name);
        const s = scales?.get(name);
        if (s !== undefined) for (let j = 0; j < v.data.length; j++) v.data[j] = v.data[j]! * s;
        const prev = sum[target];
        if (prev) for (let j = 0; j < prev.data.length; j++) prev.data[j] = prev.data[j]! + v.data[j]!;
        else sum[target] = { data: v.data, dims: v.dims };
      }
    }
    if (Object.keys(sum).length === 0) return idle!;
    // Guess mode: the unconditional half gets no control, zeros first, as diffusers' torch.cat([zeros_like(d), d]).
    const result = condOnly
      ? Object.fromEntries(Object.entries(sum).map(([k, v]) => [k, catBatch([{ data: new Float32Array(v.data.length), dims: v.dims }, v])]))
      : sum;
    idle ??= Object.fromEntries(Object.entries(result).map(([k, v]) => [k, { data: new Float32Array(v.data.length), dims: v.dims }]));
    return result;
  };
}

/** The first `channels` channels of an NCHW tensor. */
function sliceChannels(t: Tensor, channels: number): Tensor {
  const [b, c, h, w] = t.dims as [number, number, number, number];
  const plane = h * w;
  const out = new Float32Array(b * channels * plane);
  for (let i = 0; i < b; i++) out.set(t.data.subarray(i * c * plane, (i * c + channels) * plane), i * channels * plane);
  return { data: out, dims: [b, channels, h, w] };
}

function scaleLatents(t: Tensor, sigma: number): Tensor {
  const s = f32(sigma);
  return { data: t.data.map((v) => f32(v * s)), dims: t.dims };
}

/**
 * The inpaint checks shared by SD 1.x/2.x and SDXL (same rules in both diffusers pipelines). Returns whether the UNet is
 * an inpainting one (latents ‖ mask ‖ masked-image latents: 2 × latent channels + 1).
 */
export function checkInpaintInputs(model: LoadedModel, p: Pick<PipelineParams, 'init' | 'mask'>): boolean {
  const { info } = model;
  const inpaintUnet = info.unetInChannels === info.latentChannels * 2 + 1;
  if (inpaintUnet && !p.mask) throw new BadRequestError('This is an inpainting model: attach a mask (white = repaint) with the image.');
  if ((p.init || p.mask) && !model.vaeEncoder) throw new BadRequestError('This model folder has no vae_encoder, so it cannot start from an image.');
  if (p.mask && !p.init) throw new BadRequestError('A mask needs an image to paint into.');
  if (p.mask && p.init && (p.mask.dims[2] !== p.init.dims[2] || p.mask.dims[3] !== p.init.dims[3])) {
    throw new BadRequestError(`The mask is ${p.mask.dims[3]}×${p.mask.dims[2]} but the image is ${p.init.dims[3]}×${p.init.dims[2]}: they must be the same size.`);
  }
  return inpaintUnet;
}

export interface InpaintLatents {
  latents: Tensor;
  /** The init image's latents [n, …]: the legacy blend's target (and the start at strength < 1). */
  imageLatents: Tensor | null;
  /** The noise drawn per image, reused by the legacy blend. */
  initialNoise: Tensor;
  /** The mask at latent size [n, 1, h, w] and the masked image's latents [n, …]. */
  maskLatent: Tensor;
  maskedImageLatents: Tensor;
}

/**
 * Start latents, mask and masked-image latents as StableDiffusionInpaintPipeline and StableDiffusionXLInpaintPipeline
 * (0.30.3) prepare them. Draws per generator: generator 0 encodes the init image (batch 1, diffusers'
 * _encode_vae_image) when the legacy blend or strength < 1 needs it, then every generator draws its noise, then
 * generator 0 encodes the masked image. strength == 1 starts from pure noise, anything less noises the image latents
 * to the first timestep (so SDXL's default 0.9999 drops a step and keeps a trace of the image).
 */
export async function prepareInpaintLatents(
  model: LoadedModel, init: Tensor, mask: Tensor,
  o: {
    scheduler: Scheduler; timesteps: readonly number[]; generators: readonly TorchGenerator[]; latentShape: readonly number[]; strength: number;
    inpaintUnet: boolean; variation?: PipelineParams['variation'];
  },
): Promise<InpaintLatents> {
  const { info } = model;
  const n = o.generators.length;
  const g0 = o.generators[0]!;
  const strengthMax = o.strength >= 1;
  const imageLatents = !o.inpaintUnet || !strengthMax
    ? repeatBatch(await vaeEncodeSample(model.vaeEncoder!, init, g0, info.scalingFactor, info.shiftFactor), n)
    : null;
  const initialNoise = startNoise(o.generators, o.latentShape, o.variation ?? null);
  const latents = strengthMax
    ? scaleLatents(initialNoise, o.scheduler.initNoiseSigma)
    : { data: o.scheduler.addNoise(imageLatents!.data, initialNoise.data, o.timesteps[0]!), dims: initialNoise.dims };
  const masked = maskImage(init, mask);
  const maskedImageLatents = repeatBatch(await vaeEncodeSample(model.vaeEncoder!, masked, g0, info.scalingFactor, info.shiftFactor), n);
  const maskLatent = repeatBatch(nearestDownsample(mask, o.latentShape[1]!, o.latentShape[2]!), n);
  return { latents, imageLatents, initialNoise, maskLatent, maskedImageLatents };
}

/** The 9-channel inpaint UNet's input: scaled latents ‖ mask ‖ masked-image latents, repeated for the CFG halves. */
export function inpaintChannels(maskLatent: Tensor, maskedImageLatents: Tensor, cfgFactor: number): (scaled: Tensor) => Tensor {
  const m = repeatBatch(maskLatent, cfgFactor);
  const masked = repeatBatch(maskedImageLatents, cfgFactor);
  return (x) => catChannels([x, m, masked]);
}

/** masked_image = init * (mask < 0.5): the region to repaint is zeroed (mid-grey in [-1, 1] space). */
export function maskImage(init: Tensor, mask: Tensor): Tensor {
  const plane = mask.data.length;
  const data = new Float32Array(init.data.length);
  for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) data[c * plane + i] = mask.data[i]! < 0.5 ? init.data[c * plane + i]! : 0;
  return { data, dims: init.dims };
}

/** F.interpolate(mask, size=(h, w)) with the default 'nearest' mode: src = floor(dst * in / out). */
export function nearestDownsample(mask: Tensor, h: number, w: number): Tensor {
  const H = mask.dims[2]!;
  const W = mask.dims[3]!;
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    const sy = Math.min(H - 1, Math.floor((y * H) / h));
    for (let x = 0; x < w; x++) out[y * w + x] = mask.data[sy * W + Math.min(W - 1, Math.floor((x * W) / w))]!;
  }
  return { data: out, dims: [1, 1, h, w] };
}

/**
 * Legacy inpainting with an ordinary UNet: after each step the known region is replaced by the init latents noised to
 * the next timestep, so only the masked region is generated (diffusers' num_channels_unet == 4 branch).
 */
export function blendKnownRegion(
  scheduler: Scheduler, x: Tensor, imageLatents: Tensor, noise: Tensor, mask: Tensor,
  timesteps: readonly number[], i: number,
): Tensor {
  const proper = i < timesteps.length - 1 ? scheduler.addNoise(imageLatents.data, noise.data, timesteps[i + 1]!) : imageLatents.data;
  const plane = mask.data.length / mask.dims[0]!;
  const channels = x.dims[1]!;
  const out = new Float32Array(x.data.length);
  for (let b = 0; b < x.dims[0]!; b++) {
    for (let c = 0; c < channels; c++) {
      const off = (b * channels + c) * plane;
      for (let k = 0; k < plane; k++) {
        const m = mask.data[b * plane + k]!;
        out[off + k] = f32(f32(f32(1 - m) * proper[off + k]!) + f32(m * x.data[off + k]!));
      }
    }
  }
  return { data: out, dims: x.dims };
}
