/**
 * SDXL base: txt2img and img2img as diffusers' StableDiffusionXLPipeline / StableDiffusionXLImg2ImgPipeline (0.30.3).
 *
 *   two CLIP encoders (penultimate layers concatenated, pooled from encoder 2) → size/crop micro-conditioning
 *   (time_ids) → latents → denoise with text_embeds + time_ids → decode
 */
import type { LoadedModel } from '../loaded-model.js';
import { createScheduler, img2imgTimesteps } from '../sampling/index.js';
import { TorchGenerator } from '../sampling/torch-rng.js';
import { catBatch, repeatBatch, type Tensor } from '../tensor.js';
import { denoise, encodeClip, noiseSampler, randnPerImage, runDenoiser, vaeDecode, vaeEncodeSample, type EncodedText } from './steps.js';
import type { PipelineOutput, PipelineParams } from './types.js';
import { BadRequestError } from '../../queue/job.js';

const f32 = Math.fround;

/** original size (h, w) + crop top-left (top, left) + target size (h, w): SDXL's micro-conditioning vector. */
export function sdxlTimeIds(p: Pick<PipelineParams, 'width' | 'height' | 'microConditioning'>): number[] {
  const m = p.microConditioning;
  const orig = m?.originalSize ?? { width: p.width, height: p.height };
  const crop = m?.cropTopLeft ?? { top: 0, left: 0 };
  const target = m?.targetSize ?? { width: p.width, height: p.height };
  return [orig.height, orig.width, crop.top, crop.left, target.height, target.width];
}

async function encodeBoth(model: LoadedModel, text: string): Promise<{ hidden: Tensor; pooled: Tensor; first: EncodedText }> {
  const a = await encodeClip(model.tokenizer!, model.textEncoder!, text, 'penultimate');
  const b = await encodeClip(model.tokenizer2!, model.textEncoder2!, text, 'penultimate');
  if (!b.pooled) throw new Error(`${model.textEncoder2!.path}: needs a "text_embeds" output (CLIPTextModelWithProjection)`);
  return { hidden: concatLastDim(a.hidden, b.hidden), pooled: b.pooled, first: a };
}

/** Concatenate [B, S, D1] and [B, S, D2] on the last axis. */
function concatLastDim(a: Tensor, b: Tensor): Tensor {
  const [n, s, d1] = a.dims as [number, number, number];
  const d2 = b.dims[2]!;
  const out = new Float32Array(n * s * (d1 + d2));
  for (let r = 0; r < n * s; r++) {
    out.set(a.data.subarray(r * d1, (r + 1) * d1), r * (d1 + d2));
    out.set(b.data.subarray(r * d2, (r + 1) * d2), r * (d1 + d2) + d1);
  }
  return { data: out, dims: [n, s, d1 + d2] };
}

function zerosLike(t: Tensor): Tensor {
  return { data: new Float32Array(t.data.length), dims: t.dims };
}

export async function runStableDiffusionXL(model: LoadedModel, p: PipelineParams): Promise<PipelineOutput> {
  const { info } = model;
  if (!model.textEncoder2 || !model.tokenizer2) throw new BadRequestError(`${info.name} has no text_encoder_2/tokenizer_2, which SDXL needs.`);
  if (p.mask) throw new BadRequestError('Inpainting with SDXL is not supported yet.');
  const notes: string[] = [];
  const n = p.seeds.length;
  const latentShape = [info.latentChannels, p.height / info.vaeScaleFactor, p.width / info.vaeScaleFactor];
  const timing = { textMs: 0, unetMs: 0, decodeMs: 0 };

  // 1. Prompt: no negative prompt + force_zeros_for_empty_prompt → zero embeddings; an explicit "" is encoded.
  let t0 = performance.now();
  const cfg = p.guidance > 1;
  const cond = await encodeBoth(model, p.prompt);
  if (cond.first.truncated) notes.push(`Prompt cut at ${model.tokenizer!.maxLength} tokens; dropped: "${cond.first.droppedText}"`);
  let hidden = repeatBatch(cond.hidden, n);
  let pooled = repeatBatch(cond.pooled, n);
  if (cfg) {
    const uncond = p.negativePrompt === null && info.forceZerosForEmptyPrompt
      ? { hidden: zerosLike(cond.hidden), pooled: zerosLike(cond.pooled) }
      : await encodeBoth(model, p.negativePrompt ?? '');
    hidden = catBatch([repeatBatch(uncond.hidden, n), hidden]);
    pooled = catBatch([repeatBatch(uncond.pooled, n), pooled]);
  }
  const timeIdRow = sdxlTimeIds(p);
  const rows = n * (cfg ? 2 : 1);
  const timeIds: Tensor = { data: Float32Array.from({ length: rows * 6 }, (_, i) => timeIdRow[i % 6]!), dims: [rows, 6] };
  timing.textMs = performance.now() - t0;

  // 2. Schedule and latents (img2img: VAE sample then noise per generator).
  const scheduler = createScheduler({ sampler: p.sampler, schedule: p.schedule, folderConfig: info.schedulerConfig, steps: p.steps });
  const { timesteps } = p.init ? img2imgTimesteps(scheduler, p.steps, p.strength) : { timesteps: [...scheduler.timesteps] };
  if (timesteps.length === 0) throw new BadRequestError(`Strength ${p.strength} with ${p.steps} steps leaves no denoising step: raise one of them.`);
  const generators = p.seeds.map((s) => new TorchGenerator(s));
  let latents: Tensor;
  if (p.init) {
    const encoded = [];
    for (const g of generators) encoded.push(await vaeEncodeSample(model.vaeEncoder!, p.init, g, info.scalingFactor, info.shiftFactor));
    const x0 = catBatch(encoded);
    const noise = randnPerImage(generators, latentShape);
    latents = { data: scheduler.addNoise(x0.data, noise.data, timesteps[0]!), dims: x0.dims };
  } else {
    const noise = randnPerImage(generators, latentShape);
    const s = f32(scheduler.initNoiseSigma);
    latents = { data: noise.data.map((v) => f32(v * s)), dims: noise.dims };
  }

  // 3. Denoise with the added conditions.
  const perRow = (t: Tensor, start: number, count: number): Tensor => {
    const per = t.data.length / t.dims[0]!;
    return { data: t.data.subarray(start * per, (start + count) * per), dims: [count, ...t.dims.slice(1)] };
  };
  t0 = performance.now();
  latents = await denoise({
    scheduler, timesteps, latents, guidance: p.guidance, guidanceRescale: p.guidanceRescale, noise: noiseSampler(generators, latentShape),
    signal: p.signal, timing, onStep: p.onStep,
    model: (input, t) => runDenoiser(model.unet, 'sample', 'out_sample', input, t, (start, count) => ({
      encoder_hidden_states: perRow(hidden, start, count),
      text_embeds: perRow(pooled, start, count),
      time_ids: perRow(timeIds, start, count),
    })),
  });
  const denoiseMs = performance.now() - t0;

  t0 = performance.now();
  const images = await vaeDecode(model.vaeDecoder, latents, info.scalingFactor, info.shiftFactor);
  timing.decodeMs = performance.now() - t0;
  return { latents, images, notes, timings: { textMs: timing.textMs, denoiseMs, unetMs: timing.unetMs, decodeMs: timing.decodeMs } };
}
