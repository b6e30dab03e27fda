/**
 * Steps shared by every pipeline recipe: prompt encoding, VAE encode/decode, the batched UNet call, classifier-free
 * guidance and the denoising loop. Arithmetic mirrors torch's float32 elementwise ops (each op rounded to float32).
 */
import type { LoadedModel, PromptTokenizer } from '../loaded-model.js';
import type { ModelGraph } from '../onnx/session.js';
import { RotatingBuffers, type Scheduler, type NoiseSampler } from '../sampling/scheduler.js';
import { noiseStream, type NoiseStream } from '../sampling/noise-stream.js';
import { tiledDecode } from './tiled-decode.js';
import { TorchGenerator } from '../sampling/torch-rng.js';
import { catBatch, repeatBatch, sliceBatch, type Tensor } from '../tensor.js';
import { guidanceInto, latentBuffer, withLatentArena } from '../simd/latent-kernels.js';
import { CancelledError } from '../../queue/job.js';

const f32 = Math.fround;

export interface EncodedText {
  /** [1, 77, D] hidden states fed as encoder_hidden_states. */
  hidden: Tensor;
  /** [1, P] pooled projection (text_embeds), for encoders that have one. */
  pooled: Tensor | null;
  ids: number[];
  truncated: boolean;
  droppedText: string;
}

/**
 * Runs one CLIP text encoder on a prompt. `layer` picks the features: 'last' = last_hidden_state (SD1/SD2),
 * 'penultimate' = hidden_states[-2] (SDXL, SD3).
 */
/**
 * The SD 1.x/2.x text conditioning of the model batch from the folder's one text encoder (last hidden state):
 * [negative × n, prompt × n] with CFG ("" when no negative prompt is given, as diffusers), else prompt × n. A cut
 * prompt is noted.
 */
export async function encodePromptBatch(
  model: LoadedModel, prompt: string, negativePrompt: string | null, n: number, cfg: boolean, notes: string[],
): Promise<Tensor> {
  const tokenizer = model.tokenizer!;
  const encoder = model.textEncoder!;
  const cond = await encodeClip(tokenizer, encoder, prompt, 'last');
  if (cond.truncated) notes.push(`Prompt cut at ${tokenizer.maxLength} tokens; dropped: "${cond.droppedText}"`);
  if (!cfg) return repeatBatch(cond.hidden, n);
  const uncond = await encodeClip(tokenizer, encoder, negativePrompt ?? '', 'last');
  return catBatch([repeatBatch(uncond.hidden, n), repeatBatch(cond.hidden, n)]);
}

export async function encodeClip(tokenizer: PromptTokenizer, encoder: ModelGraph, text: string, layer: 'last' | 'penultimate'): Promise<EncodedText> {
  const enc = tokenizer.encodeForModel(text);
  const out = await encoder.run({ input_ids: { ints: enc.ids, dims: [1, enc.ids.length] } });
  let hidden;
  if (layer === 'last') {
    hidden = out['last_hidden_state'] ?? Object.values(out)[0];
  } else {
    const layers = Object.keys(out).filter((k) => k.startsWith('hidden_states.')).map((k) => Number(k.slice('hidden_states.'.length)));
    const n = Math.max(...layers);
    hidden = out[`hidden_states.${n - 1}`];
    if (!hidden || layers.length < 2) throw new Error(`${encoder.path}: needs hidden_states.N outputs (exported with output_hidden_states) for penultimate-layer features`);
  }
  if (!hidden) throw new Error(`${encoder.path}: produced no outputs`);
  const pooledOut = out['text_embeds'] ?? null;
  return {
    hidden: { data: hidden.data, dims: hidden.dims },
    pooled: pooledOut ? { data: pooledOut.data, dims: pooledOut.dims } : null,
    ids: enc.ids,
    truncated: enc.truncated,
    droppedText: enc.droppedText,
  };
}

/** Draws one [1, ...shape] normal sample per generator and concatenates them (diffusers' list-of-generators randn_tensor). */
export function randnPerImage(generators: readonly TorchGenerator[], perImage: readonly number[]): Tensor {
  return catBatch(generators.map((g) => ({ data: g.randn([1, ...perImage]), dims: [1, ...perImage] })));
}

/** The per-step noise source of a denoising loop (see noise-stream.ts); `denoise` closes it. */
/**
 * AUTOMATIC1111's variation seeds: per image, slerp(strength, noise(seed + i), noise(variationSeed + i)) with its
 * norms taken along axis 1 of the [C, H, W] noise (as A1111's slerp does on that shape), and its linear fallback
 * (which weights the two the other way round) when the two noises are nearly parallel.
 */
export function slerpNoise(low: Float32Array, high: Float32Array, dims: readonly number[], val: number): Float32Array {
  const [C, H, W] = dims as [number, number, number];
  const out = new Float32Array(low.length);
  const cols = C * W;
  const dots = new Float64Array(cols);
  for (let c = 0; c < C; c++) {
    for (let w = 0; w < W; w++) {
      let nl = 0;
      let nh = 0;
      let d = 0;
      for (let h = 0; h < H; h++) {
        const i = (c * H + h) * W + w;
        nl += low[i]! * low[i]!;
        nh += high[i]! * high[i]!;
        d += low[i]! * high[i]!;
      }
      dots[c * W + w] = d / (Math.sqrt(nl) * Math.sqrt(nh));
    }
  }
  const mean = dots.reduce((a, b) => a + b, 0) / cols;
  for (let c = 0; c < C; c++) {
    for (let w = 0; w < W; w++) {
      const omega = Math.acos(Math.min(1, Math.max(-1, dots[c * W + w]!)));
      const so = Math.sin(omega);
      const a = mean > 0.9995 ? val : Math.sin((1 - val) * omega) / so;
      const b = mean > 0.9995 ? 1 - val : Math.sin(val * omega) / so;
      for (let h = 0; h < H; h++) {
        const i = (c * H + h) * W + w;
        out[i] = a * low[i]! + b * high[i]!;
      }
    }
  }
  return out;
}

/**
 * A run's start noise (txt2img latents, the noise img2img and inpaint add to the image): one draw per image, blended
 * toward the variation seed's when asked, as AUTOMATIC1111 blends the noise of every job kind.
 */
export function startNoise(generators: readonly TorchGenerator[], perImage: readonly number[], variation: { seeds: bigint[]; strength: number } | null): Tensor {
  const noise = randnPerImage(generators, perImage);
  if (!variation || variation.strength <= 0) return noise;
  const per = noise.data.length / generators.length;
  const out = new Float32Array(noise.data.length);
  for (let i = 0; i < generators.length; i++) {
    const sub = new TorchGenerator(variation.seeds[i]!).randn([1, ...perImage]);
    out.set(slerpNoise(noise.data.subarray(i * per, (i + 1) * per), sub, perImage, variation.strength), i * per);
  }
  return { data: out, dims: noise.dims };
}

export function noiseSampler(generators: readonly TorchGenerator[], perImage: readonly number[]): NoiseStream {
  return noiseStream(generators, perImage);
}

/**
 * VAE-encodes a [1, 3, H, W] image in [-1, 1] and samples the latent with `generator` (DiagonalGaussian: mean +
 * exp(0.5 * clamp(logvar, -30, 20)) * randn), then applies the scaling (and SD3 shift). Legacy exports that output a
 * pre-sampled `latent_sample` are used as they are: their randomness lives in the graph. `rows` > the image batch
 * samples that many rows from the one encoding in a single draw, as sampling the encoded repeated batch would.
 */
export async function vaeEncodeSample(
  vae: ModelGraph, image: Tensor, generator: TorchGenerator, scalingFactor: number, shiftFactor: number | null,
  rows = image.dims[0]!,
): Promise<Tensor> {
  const out = await vae.run({ sample: image });
  let latent: Tensor;
  const params = out['latent_parameters'];
  if (params) {
    const [encoded, c2, h, w] = params.dims as [number, number, number, number];
    const n = Math.max(rows, encoded);
    const c = c2 / 2;
    const plane = c * h * w;
    const noise = generator.randn([n, c, h, w]);
    const data = new Float32Array(n * plane);
    for (let b = 0; b < n; b++) {
      const src = (b % encoded) * 2 * plane;
      for (let i = 0; i < plane; i++) {
        const mean = params.data[src + i]!;
        const logvar = Math.min(Math.max(params.data[src + plane + i]!, -30), 20);
        const std = f32(Math.exp(f32(0.5 * logvar)));
        data[b * plane + i] = f32(mean + f32(std * noise[b * plane + i]!));
      }
    }
    latent = { data, dims: [n, c, h, w] };
  } else {
    const sample = out['latent_sample'];
    if (!sample) throw new Error(`${vae.path}: no latent_parameters or latent_sample output`);
    latent = { data: sample.data, dims: sample.dims };
    if (rows > latent.dims[0]!) latent = repeatBatch(latent, rows / latent.dims[0]!);
  }
  const sf = f32(scalingFactor);
  const shift = shiftFactor === null ? null : f32(shiftFactor);
  const data = latent.data.map((v) => (shift === null ? f32(v * sf) : f32(f32(v - shift) * sf)));
  return { data, dims: latent.dims };
}

/** latents / scaling_factor (+ shift) → VAE decoder → [N, 3, H, W] in about [-1, 1]. */
/** Latent pixels (h × w) above which decoding is tiled, and the tile side: 128² latents = 1024² px at /8. */
export const TILED_DECODE_ABOVE = 128 * 128;
export const DECODE_TILE = 64;

export async function vaeDecode(
  vae: ModelGraph, latents: Tensor, scalingFactor: number, shiftFactor: number | null, vaeScale = 8,
): Promise<Tensor> {
  const sf = f32(scalingFactor);
  const shift = shiftFactor === null ? null : f32(shiftFactor);
  const scaled = latents.data.map((v) => (shift === null ? f32(v / sf) : f32(f32(v / sf) + shift)));
  const [, , lh, lw] = latents.dims as [number, number, number, number];
  // Above this many latent pixels a single decode would not fit a consumer GPU's memory: decode in tiles.
  if (lh * lw > TILED_DECODE_ABOVE) return tiledDecode(vae, { data: scaled, dims: latents.dims }, { tileLatent: DECODE_TILE, scale: vaeScale });
  const parts: Tensor[] = [];
  for (const chunk of batchChunks(vae, 'latent_sample', latents.dims[0]!)) {
    const out = await vae.run({ latent_sample: sliceBatch({ data: scaled, dims: latents.dims }, chunk.start, chunk.count) });
    const s = out['sample'];
    if (!s) throw new Error(`${vae.path}: no "sample" output`);
    parts.push({ data: s.data, dims: s.dims });
  }
  return catBatch(parts);
}

/** Splits a batch into the chunks a graph with a fixed batch dimension accepts (one call when the axis is dynamic). */
export function batchChunks(graph: ModelGraph, input: string, batch: number): { start: number; count: number }[] {
  const dim = graph.input(input).shape[0];
  const size = typeof dim === 'number' && dim > 0 ? dim : batch;
  const chunks = [];
  for (let start = 0; start < batch; start += size) chunks.push({ start, count: Math.min(size, batch - start) });
  return chunks;
}

/** The timestep as the denoiser's input declares it: a rank-0 scalar, or one value per batch row. */
export function timestepFeed(graph: ModelGraph, t: number, batch: number): { data: Float32Array; dims: number[] } {
  const spec = graph.input('timestep');
  return spec.shape.length === 0 ? { data: Float32Array.of(t), dims: [] } : { data: new Float32Array(batch).fill(t), dims: [batch] };
}

/** noise_uncond + g * (noise_cond - noise_uncond), in float32; the batch is [uncond × n, cond × n]. */
export function applyGuidance(
  out: Float32Array, guidance: number, rescale: number, images: number, res: Float32Array = new Float32Array(out.length / 2),
): Float32Array {
  const half = out.length / 2;
  guidanceInto(out, guidance, res);
  if (rescale > 0) rescaleNoiseCfg(res, out.subarray(half), rescale, images);
  return res;
}

/** Guidance rescale ("Common Diffusion Noise Schedules and Sample Steps are Flawed", §3.4), per image as diffusers. */
function rescaleNoiseCfg(cfg: Float32Array, text: Float32Array, phi: number, n: number): void {
  const per = cfg.length / n;
  for (let b = 0; b < n; b++) {
    const c = cfg.subarray(b * per, (b + 1) * per);
    const ratio = std(text.subarray(b * per, (b + 1) * per)) / std(c);
    for (let i = 0; i < per; i++) c[i] = f32(phi * (c[i]! * ratio) + (1 - phi) * c[i]!);
  }
}

function std(x: Float32Array): number {
  let mean = 0;
  for (const v of x) mean += v;
  mean /= x.length;
  let s = 0;
  for (const v of x) s += (v - mean) ** 2;
  return Math.sqrt(s / (x.length - 1));
}

export interface DenoiseOptions {
  scheduler: Scheduler;
  timesteps: readonly number[];
  latents: Tensor;
  guidance: number;
  guidanceRescale: number;
  noise: NoiseSampler & { prepare?: (draws?: number) => Promise<void>; close?: () => void };
  /** Builds the denoiser input from the scaled latents of the CFG batch (e.g. adds inpaint/depth channels). */
  buildInput?: (scaled: Tensor) => Tensor;
  /** Runs the denoiser on the full model batch and returns its prediction. */
  model: (input: Tensor, t: number, stepIndex: number) => Promise<Float32Array>;
  /** Adjusts the guided prediction in place before the step (skip-layer guidance); gets the raw model output. */
  refine?: (c: { i: number; total: number; t: number; scaled: Tensor; raw: Float32Array; pred: Float32Array }) => Promise<void>;
  /** Called after each step with the new latents; may mutate nothing. */
  afterStep?: (i: number, latents: Tensor) => Tensor;
  onStep?: (i: number, total: number, latents: Tensor) => void;
  signal?: AbortSignal | undefined;
  /** Accumulates the time spent inside denoiser runs. */
  timing?: { unetMs: number };
}

/**
 * Latent-sized buffers a denoising loop takes from its arena at most: the CFG batch (two), the guided predictions
 * (three) and the sampler's outputs, scaled inputs and history. Past that, buffers are ordinary arrays.
 */
const ARENA_BUFFERS = 24;

/** The denoising loop every diffusers pipeline shares: scale, (CFG batch), predict, guide, step. */
export async function denoise(o: DenoiseOptions): Promise<Tensor> {
  // The loop's buffers live in wasm memory, where the latent kernels work on them without copies (latent-arena.ts);
  // the result is copied out so that nothing outlives the loop in there.
  const x = await withLatentArena(o.latents.data.length, ARENA_BUFFERS, () => denoiseLoop(o));
  return { data: x.data.slice(), dims: x.dims };
}

async function denoiseLoop(o: DenoiseOptions): Promise<Tensor> {
  const n = o.latents.dims[0]!;
  const cfg = o.guidance > 1;
  let x = o.latents;
  // The CFG batch [x, x] is rebuilt every step into one buffer: the model has consumed it by the next step.
  const cfgBatch = cfg ? latentBuffer(x.data.length * 2) : null;
  // Samplers copy what they keep of a model output, so guided predictions can rotate too.
  const guided = new RotatingBuffers();
  // a sampler that draws noise draws at most once per model call
  await o.noise.prepare?.(o.scheduler.drawsNoise ? o.timesteps.length : 0);
  try {
    await o.scheduler.prepare?.(x.data.length);
    for (let i = 0; i < o.timesteps.length; i++) {
      if (o.signal?.aborted) throw new CancelledError('cancelled');
      const t = o.timesteps[i]!;
      let scaled: Float32Array;
      let batch: Tensor;
      if (cfgBatch) {
        // the scaling writes its result straight into the first half; one copy makes the second
        const len = x.data.length;
        scaled = cfgBatch.subarray(0, len);
        const s = o.scheduler.scaleModelInput(x.data, t, scaled);
        if (s !== scaled) scaled.set(s);
        cfgBatch.copyWithin(len, 0, len);
        batch = { data: cfgBatch, dims: [n * 2, ...x.dims.slice(1)] };
      } else {
        scaled = o.scheduler.scaleModelInput(x.data, t);
        batch = { data: scaled, dims: x.dims };
      }
      const input = o.buildInput ? o.buildInput(batch) : batch;
      const t0 = performance.now();
      const out = await o.model(input, t, i);
      if (o.timing) o.timing.unetMs += performance.now() - t0;
      const pred = cfg ? applyGuidance(out, o.guidance, o.guidanceRescale, n, guided.next(x.data.length)) : out;
      if (o.refine) await o.refine({ i, total: o.timesteps.length, t, scaled: { data: scaled, dims: x.dims }, raw: out, pred });
      x = { data: o.scheduler.step(pred, t, x.data, o.noise), dims: x.dims };
      if (o.afterStep) x = o.afterStep(i, x);
      o.onStep?.(i + 1, o.timesteps.length, x);
    }
  } finally {
    o.noise.close?.();
    o.scheduler.close?.();
  }
  return x;
}

/** Runs a UNet-style graph over the model batch, in chunks when its batch axis is fixed. */
export async function runDenoiser(
  graph: ModelGraph, sampleName: string, outputName: string, input: Tensor, t: number,
  extra: (start: number, count: number) => Record<string, { data: Float32Array; dims: readonly number[] } | { ints: readonly number[]; dims: readonly number[] }>,
): Promise<Float32Array> {
  const total = input.dims[0]!;
  const parts: Tensor[] = [];
  for (const { start, count } of batchChunks(graph, sampleName, total)) {
    const out = await graph.run({
      [sampleName]: sliceBatch(input, start, count),
      timestep: timestepFeed(graph, t, count),
      ...extra(start, count),
    });
    const o = out[outputName];
    if (!o) throw new Error(`${graph.path}: no "${outputName}" output`);
    parts.push({ data: o.data, dims: o.dims });
  }
  return parts.length === 1 ? parts[0]!.data : catBatch(parts).data;
}
