/**
 * SDXL base and refiner: txt2img, img2img and inpaint as diffusers' StableDiffusionXLPipeline /
 * StableDiffusionXLImg2ImgPipeline / StableDiffusionXLInpaintPipeline (0.30.3), and the "ensemble of experts" hand-off
 * (base with denoising_end, refiner with denoising_start on the base's latents, the same generators; from an init
 * image both as the img2img pipeline, with a mask both as the inpaint pipeline). ControlNets in all three as StableDiffusionXLControlNetPipeline /
 * StableDiffusionXLControlNetImg2ImgPipeline / StableDiffusionXLControlNetInpaintPipeline: the same latents, schedule
 * and draws as without control, the residuals added at each step (controlResiduals); with a refiner hand-off (txt2img
 * and inpaint) the control acts on the base only.
 *
 *   CLIP encoders (penultimate layers concatenated, pooled from the last) → time_ids (size/crop micro-conditioning,
 *   or the refiner's size/crop/aesthetic score) → latents → denoise with text_embeds + time_ids → decode
 */
import type { LoadedModel } from '../loaded-model.js';
import { createScheduler, img2imgTimesteps } from '../sampling/index.js';
import type { Scheduler } from '../sampling/scheduler.js';
import { noiseStream } from '../sampling/noise-stream.js';
import { TorchGenerator } from '../sampling/torch-rng.js';
import { catBatch, repeatBatch, concatLastDim, sliceBatch, sliceFeeds, type Tensor } from '../tensor.js';
import { denoise, encodeClip, randnPerImage, runDenoiser, startNoise, vaeDecode, vaeEncodeSample, type EncodedText } from './steps.js';
import type { PipelineOutput, PipelineParams } from './types.js';
import {
  blendKnownRegion, checkInpaintInputs, controlResiduals, inpaintChannels, nearestDownsample, prepareInpaintLatents, type InpaintLatents,
} from './stable-diffusion.js';
import { BadRequestError } from '../../queue/job.js';

const f32 = Math.fround;

/** diffusers' defaults for the refiner's aesthetic-score conditioning. */
export const AESTHETIC_SCORE = 6.0;
export const NEGATIVE_AESTHETIC_SCORE = 2.5;

/**
 * time_ids: original size (h, w) + crop top-left (top, left) + target size (h, w); a refiner (5 ids) replaces the
 * target size by the aesthetic score.
 */
export function sdxlTimeIds(p: Pick<PipelineParams, 'width' | 'height' | 'microConditioning'>, aesthetic: number | null): number[] {
  const m = p.microConditioning;
  const orig = m?.originalSize ?? { width: p.width, height: p.height };
  const crop = m?.cropTopLeft ?? { top: 0, left: 0 };
  const target = m?.targetSize ?? { width: p.width, height: p.height };
  const head = [orig.height, orig.width, crop.top, crop.left];
  return aesthetic === null ? [...head, target.height, target.width] : [...head, aesthetic];
}

/** Whether the UNet is a refiner's: 5 time ids (size, crop, aesthetic score) instead of 6. */
export function usesAestheticScore(model: LoadedModel): boolean {
  const dim = model.unet.inputs.get('time_ids')?.shape[1];
  return dim === 5 || (dim === undefined && model.info.modelIndex['requires_aesthetics_score'] === true);
}

async function encodeAll(model: LoadedModel, text: string): Promise<{ hidden: Tensor; pooled: Tensor; first: EncodedText }> {
  // A refiner has only the second encoder; a base has both, features concatenated with encoder 1 first.
  const pairs = [
    [model.tokenizer, model.textEncoder],
    [model.tokenizer2, model.textEncoder2],
  ].filter((pair): pair is [NonNullable<LoadedModel['tokenizer']>, NonNullable<LoadedModel['textEncoder']>] => pair[0] !== null && pair[1] !== null);
  const encoded = [];
  for (const [tok, enc] of pairs) encoded.push(await encodeClip(tok, enc, text, 'penultimate'));
  const last = encoded.at(-1)!;
  if (!last.pooled) throw new Error(`${model.info.dir}: the last text encoder needs a "text_embeds" output (CLIPTextModelWithProjection)`);
  const hidden = encoded.slice(1).reduce((acc, e) => concatLastDim(acc, e.hidden), encoded[0]!.hidden);
  return { hidden, pooled: last.pooled, first: encoded[0]! };
}

function zerosLike(t: Tensor): Tensor {
  return { data: new Float32Array(t.data.length), dims: t.dims };
}

/** Where a run starts and stops on the schedule: img2img strength, or the expert hand-off fractions. */
export interface SdxlRange {
  /** Base: stop at this fraction of the noise schedule and return latents (denoising_end). */
  denoisingEnd?: number;
  /** Refiner: continue these latents from this fraction (denoising_start); no VAE encode, no added noise. */
  denoisingStart?: number;
  latents?: Tensor;
  /** The generators continue from the base's run, as diffusers' shared generator does. */
  generators?: TorchGenerator[];
  /** Refiner of an inpaint hand-off: the job's mask; the known region is blended toward the base's latents. */
  inpaintMask?: Tensor;
}

/** StableDiffusionXLPipeline's denoising_end: keep the timesteps at or above the cutoff. */
function cutAtEnd(timesteps: readonly number[], trainSteps: number, end: number): number[] {
  const cutoff = Math.round(trainSteps - end * trainSteps);
  return timesteps.filter((t) => t >= cutoff);
}

/** StableDiffusionXLImg2ImgPipeline.get_timesteps with denoising_start: the tail below the cutoff. */
function tailFromStart(s: Scheduler, trainSteps: number, start: number): number[] {
  const cutoff = Math.round(trainSteps - start * trainSteps);
  let count = s.timesteps.filter((t) => t < cutoff).length;
  // a second-order sampler must not start between its two evaluations of one step
  if (s.order === 2 && count % 2 === 0) count += 1;
  const begin = s.timesteps.length - count;
  s.setBeginIndex(begin);
  return s.timesteps.slice(begin);
}

export interface SdxlRun {
  latents: Tensor;
  generators: TorchGenerator[];
  notes: string[];
  timings: { textMs: number; denoiseMs: number; unetMs: number };
}

/** Everything up to the final latents. */
export async function denoiseSdxl(model: LoadedModel, p: PipelineParams, range: SdxlRange = {}): Promise<SdxlRun> {
  const { info } = model;
  if (!model.textEncoder2 || !model.tokenizer2) throw new BadRequestError(`${info.name} has no text_encoder_2/tokenizer_2, which SDXL needs.`);
  const inpaintUnet = checkInpaintInputs(model, p);
  // Controls follow StableDiffusionXLControlNet{,Img2Img,Inpaint}Pipeline: txt2img, img2img and inpaint share the steps
  // below, and a base with denoising_end keeps its control (runSdxlWithRefiner gives the refiner none).
  // (A residual UNet with no control still runs everywhere: its ControlNet at scale 0.)
  const notes: string[] = [];
  const n = p.seeds.length;
  const latentShape = [info.latentChannels, p.height / info.vaeScaleFactor, p.width / info.vaeScaleFactor];
  const timing = { unetMs: 0 };

  // 1. Prompt: no negative prompt + force_zeros_for_empty_prompt → zero embeddings; an explicit "" is encoded.
  let t0 = performance.now();
  const cfg = p.guidance > 1;
  const cond = await encodeAll(model, p.prompt);
  if (cond.first.truncated) notes.push(`Prompt cut at ${(model.tokenizer ?? model.tokenizer2)!.maxLength} tokens; dropped: "${cond.first.droppedText}"`);
  let hidden = repeatBatch(cond.hidden, n);
  let pooled = repeatBatch(cond.pooled, n);
  const aesthetic = usesAestheticScore(model);
  const pos = sdxlTimeIds(p, aesthetic ? (p.aestheticScore ?? AESTHETIC_SCORE) : null);
  let idRows = Array.from({ length: n }, () => pos);
  if (cfg) {
    const uncond = p.negativePrompt === null && info.forceZerosForEmptyPrompt
      ? { hidden: zerosLike(cond.hidden), pooled: zerosLike(cond.pooled) }
      : await encodeAll(model, p.negativePrompt ?? '');
    hidden = catBatch([repeatBatch(uncond.hidden, n), hidden]);
    pooled = catBatch([repeatBatch(uncond.pooled, n), pooled]);
    const neg = sdxlTimeIds(p, aesthetic ? (p.negativeAestheticScore ?? NEGATIVE_AESTHETIC_SCORE) : null);
    idRows = [...Array.from({ length: n }, () => neg), ...idRows];
  }
  const width = pos.length;
  const timeIds: Tensor = { data: Float32Array.from(idRows.flat()), dims: [idRows.length, width] };
  const textMs = performance.now() - t0;

  // 2. Schedule and latents (img2img: VAE sample then noise per generator; hand-off: the base's latents as they are).
  const scheduler = createScheduler({ sampler: p.sampler, schedule: p.schedule, folderConfig: info.schedulerConfig, steps: p.steps, seeds: p.seeds, ...(p.init ? { strength: p.strength } : {}) });
  const trainSteps = Number(info.schedulerConfig['num_train_timesteps'] ?? 1000);
  const generators = range.generators ?? p.seeds.map((s) => new TorchGenerator(s));
  let timesteps: number[];
  let latents: Tensor;
  let inpaint: InpaintLatents | null = null;
  if (range.latents && range.denoisingStart !== undefined) {
    timesteps = tailFromStart(scheduler, trainSteps, range.denoisingStart);
    latents = range.latents;
    if (range.inpaintMask) {
      // StableDiffusionXLInpaintPipeline given latents as its image and denoising_start: every generator still draws a
      // noise, which (with the latents as "image latents") is what the 4-channel blend noises toward. There is no
      // masked image (the refiner is 4-channel, checked by the caller), hence the unused zeros.
      const noise = randnPerImage(generators, latentShape);
      const mask = repeatBatch(nearestDownsample(range.inpaintMask, latentShape[1]!, latentShape[2]!), n);
      inpaint = { latents, imageLatents: range.latents, initialNoise: noise, maskLatent: mask, maskedImageLatents: zerosLike(range.latents) };
    }
  } else if (p.init && p.mask) {
    // StableDiffusionXLInpaintPipeline: the img2img schedule slice, then SD's inpaint latents (same draws and rules).
    timesteps = img2imgTimesteps(scheduler, p.steps, p.strength).timesteps;
    inpaint = await prepareInpaintLatents(model, p.init, p.mask, {
      scheduler, timesteps, generators, latentShape, strength: p.strength, inpaintUnet, variation: p.variation ?? null,
    });
    latents = inpaint.latents;
  } else if (p.init) {
    timesteps = img2imgTimesteps(scheduler, p.steps, p.strength).timesteps;
    const encoded = [];
    for (const g of generators) encoded.push(await vaeEncodeSample(model.vaeEncoder!, p.init, g, info.scalingFactor, info.shiftFactor));
    const x0 = catBatch(encoded);
    const noise = startNoise(generators, latentShape, p.variation ?? null);
    latents = { data: scheduler.addNoise(x0.data, noise.data, timesteps[0]!), dims: x0.dims };
  } else {
    timesteps = [...scheduler.timesteps];
    const noise = startNoise(generators, latentShape, p.variation ?? null);
    const s = f32(scheduler.initNoiseSigma);
    latents = { data: noise.data.map((v) => f32(v * s)), dims: noise.dims };
  }
  // The ControlNet pipelines build controlnet_keep before cutting at denoising_end: a control window is a fraction of
  // the whole schedule (txt2img) or strength slice (inpaint), not of the steps the base runs.
  const controlSteps = timesteps.length;
  if (range.denoisingEnd !== undefined) timesteps = cutAtEnd(timesteps, trainSteps, range.denoisingEnd);
  if (timesteps.length === 0) throw new BadRequestError('That refiner switch point leaves one of the two models no step: pick a value between 0.1 and 0.9.');

  // 3. Denoise with the added conditions. A base that hands over draws its step noise in place, so its generators
  // are where diffusers leaves them when the refiner continues with them.
  // Inpaint: a 9-channel UNet sees mask + masked-image latents; a 4-channel one has the known region blended back after
  // each step, toward the image latents noised to the next timestep of the (possibly cut) schedule.
  const cut = timesteps;
  const buildInput = inpaint && inpaintUnet ? inpaintChannels(inpaint.maskLatent, inpaint.maskedImageLatents, cfg ? 2 : 1) : undefined;
  const known = inpaint && !inpaintUnet ? inpaint : null;
  const afterStep = known ? (i: number, x: Tensor) => blendKnownRegion(scheduler, x, known.imageLatents!, known.initialNoise, known.maskLatent, cut, i) : undefined;
  // The ControlNets take the UNet's added conditions too (StableDiffusionXLControlNetPipeline's added_cond_kwargs).
  const control = controlResiduals(model, p, { encoder_hidden_states: hidden, text_embeds: pooled, time_ids: timeIds }, n, cfg);
  t0 = performance.now();
  latents = await denoise({
    scheduler, timesteps, latents, guidance: p.guidance, guidanceRescale: p.guidanceRescale,
    noise: noiseStream(generators, latentShape, range.denoisingEnd !== undefined ? Infinity : undefined),
    signal: p.signal, timing, onStep: p.onStep, buildInput, afterStep,
    model: async (input, t, i) => {
      const residuals = control ? await control(input, t, i, controlSteps) : {};
      return runDenoiser(model.unet, 'sample', 'out_sample', input, t, (start, count) =>
        sliceFeeds({ encoder_hidden_states: hidden, text_embeds: pooled, time_ids: timeIds, ...residuals }, start, count));
    },
  });
  return { latents, generators, notes, timings: { textMs, denoiseMs: performance.now() - t0, unetMs: timing.unetMs } };
}

export async function runStableDiffusionXL(model: LoadedModel, p: PipelineParams): Promise<PipelineOutput> {
  const run = await denoiseSdxl(model, p);
  const t0 = performance.now();
  const images = await vaeDecode(model.vaeDecoder, run.latents, model.info.scalingFactor, model.info.shiftFactor, model.info.vaeScaleFactor);
  return { latents: run.latents, images, notes: run.notes, timings: { ...run.timings, decodeMs: performance.now() - t0 } };
}

/**
 * Base + refiner as an ensemble of experts: the base denoises the high-noise part of the schedule, the refiner the
 * rest, on the same latents and generators; the refiner's VAE decodes.
 */
export async function runSdxlWithRefiner(base: LoadedModel, refiner: LoadedModel, p: PipelineParams, switchAt: number): Promise<PipelineOutput> {
  const a = base.info;
  const b = refiner.info;
  if (a.latentChannels !== b.latentChannels || a.vaeScaleFactor !== b.vaeScaleFactor || Math.abs(a.scalingFactor - b.scalingFactor) > 1e-6) {
    throw new BadRequestError(`The refiner ${b.name} does not share ${a.name}'s latent format (${b.latentChannels} vs ${a.latentChannels} channels, scale ${b.scalingFactor} vs ${a.scalingFactor}).`);
  }
  if (!(switchAt > 0 && switchAt < 1)) throw new BadRequestError('The refiner switch point must be between 0 and 1 (e.g. 0.8).');
  // Inpaint hand-off (diffusers' SDXL inpaint pipeline twice): the base inpaints down to the switch point, the refiner
  // continues those latents with the mask. A 9-channel refiner would need masked-image latents diffusers cannot make there.
  const mask = p.mask;
  if (mask && b.unetInChannels !== b.latentChannels) {
    throw new BadRequestError(`${b.name} is an inpainting UNet: a refiner for an inpaint hand-off must be an ordinary one (such as the SDXL refiner).`);
  }
  // With ControlNets the base is StableDiffusionXLControlNetPipeline / ...InpaintPipeline (both take denoising_end) and
  // the refiner the plain pipeline; diffusers' ControlNet img2img pipeline has no denoising_end to hand over with.
  if ((p.controls?.length ?? 0) > 0 && p.init && !mask) {
    throw new BadRequestError('SDXL ControlNet img2img does not go with a refiner hand-off (only txt2img and inpaint do): drop the refiner, the init image or the control image.');
  }
  // img2img hands off as StableDiffusionXLImg2ImgPipeline twice: the base on the strength slice down to the switch
  // point, the refiner from there on the base's latents (no noising, no draws).
  const first = await denoiseSdxl(base, p, { denoisingEnd: switchAt });
  const second = await denoiseSdxl(refiner, { ...p, init: null, mask: null, controls: [] }, {
    denoisingStart: switchAt, latents: first.latents, generators: first.generators, ...(mask ? { inpaintMask: mask } : {}),
  });
  const t0 = performance.now();
  const images = await vaeDecode(refiner.vaeDecoder, second.latents, b.scalingFactor, b.shiftFactor, b.vaeScaleFactor);
  return {
    latents: second.latents,
    images,
    notes: [...first.notes, `Refined by ${b.name} from ${Math.round(switchAt * 100)}% of the schedule.`],
    timings: {
      textMs: first.timings.textMs + second.timings.textMs,
      denoiseMs: first.timings.denoiseMs + second.timings.denoiseMs,
      unetMs: first.timings.unetMs + second.timings.unetMs,
      decodeMs: performance.now() - t0,
    },
  };
}
