/**
 * Stable Diffusion 3 / 3.5 (MM-DiT, rectified flow): txt2img, img2img, inpaint and ControlNet as diffusers'
 * StableDiffusion3Pipeline, StableDiffusion3Img2ImgPipeline, StableDiffusion3InpaintPipeline (sd3-inpaint.ts) and
 * StableDiffusion3ControlNetPipeline (0.30.3; SD3.5 ControlNet configs as 0.32.0 runs them).
 *
 *   CLIP-L + CLIP-G (penultimate layers, padded to the joint width) ‖ T5 along the sequence, pooled = both CLIP
 *   projections → flow-matching latents (16 channels) → transformer(x, σ·1000) → v-guidance → Euler/DPM++ step on σ
 *   → decode latents / scale + shift
 */
import type { LoadedModel } from '../loaded-model.js';
import { createScheduler } from '../sampling/index.js';
import { flowImg2ImgStart } from '../sampling/samplers/flow-match-euler.js';
import { TorchGenerator } from '../sampling/torch-rng.js';
import { catBatch, repeatBatch, concatLastDim, sliceBatch, type Tensor } from '../tensor.js';
import { denoise, encodeClip, noiseSampler, runDenoiser, startNoise, vaeDecode, vaeEncodeSample } from './steps.js';
import type { PipelineOutput, PipelineParams } from './types.js';
import { BadRequestError } from '../../queue/job.js';
import { num } from '../model-folder.js';
import { isSd3InpaintTransformer, prepareSd3Inpaint, type Sd3InpaintStart } from './sd3-inpaint.js';
import { controlFeeds, controlLatents, jointControlConfig, sd3ResidualInputs, type Sd3Control } from './sd3-controlnet.js';

interface Sd3Text {
  /** [1, 77 + L, joint] (77 + 77 zeros without T5). */
  hidden: Tensor;
  /** [1, pooled_projection_dim]. */
  pooled: Tensor;
  notes: string[];
}

/** Pads [1, S, D] on the last axis with zeros to `width`. */
function padLastDim(t: Tensor, width: number): Tensor {
  const [n, s, d] = t.dims as [number, number, number];
  if (d === width) return t;
  if (d > width) throw new Error(`CLIP features (${d} wide) exceed the transformer's joint_attention_dim ${width}`);
  const out = new Float32Array(n * s * width);
  for (let r = 0; r < n * s; r++) out.set(t.data.subarray(r * d, (r + 1) * d), r * width);
  return { data: out, dims: [n, s, width] };
}

/** Concatenates [1, S1, D] and [1, S2, D] along the sequence. */
function concatSequence(a: Tensor, b: Tensor): Tensor {
  return { data: Float32Array.from([...a.data, ...b.data]), dims: [1, a.dims[1]! + b.dims[1]!, a.dims[2]!] };
}

async function encodeSd3(model: LoadedModel, text: string, p: PipelineParams, joint: number): Promise<Sd3Text> {
  const notes: string[] = [];
  const a = await encodeClip(model.tokenizer!, model.textEncoder!, text, 'penultimate');
  const b = await encodeClip(model.tokenizer2!, model.textEncoder2!, text, 'penultimate');
  if (!a.pooled || !b.pooled) throw new Error('SD3 CLIP encoders need "text_embeds" outputs (CLIPTextModelWithProjection)');
  if (a.truncated) notes.push(`Prompt cut at ${model.tokenizer!.maxLength} tokens for CLIP; dropped: "${a.droppedText}"`);
  const clip = padLastDim(concatLastDim(a.hidden, b.hidden), joint);
  const pooled = concatLastDim({ data: a.pooled.data, dims: [1, 1, a.pooled.dims[1]!] }, { data: b.pooled.data, dims: [1, 1, b.pooled.dims[1]!] });
  let t5: Tensor;
  const useT5 = (p.useT5 ?? true) && model.textEncoder3 !== null && model.tokenizer3 !== null;
  if (useT5) {
    const L = p.maxSequenceLength ?? 256;
    const enc = model.tokenizer3!.encodeForModel(text, L);
    if (enc.truncated) notes.push(`Prompt cut at ${L} T5 tokens; dropped: "${enc.droppedText}"`);
    const out = await model.textEncoder3!.run({ input_ids: { ints: enc.ids, dims: [1, L] } });
    const h = out['last_hidden_state'] ?? Object.values(out)[0];
    if (!h) throw new Error(`${model.textEncoder3!.path}: no outputs`);
    t5 = { data: h.data, dims: h.dims };
  } else {
    // diffusers without text_encoder_3: zeros as long as the CLIP tokenizer's max length.
    const len = model.tokenizer!.maxLength;
    t5 = { data: new Float32Array(len * joint), dims: [1, len, joint] };
  }
  return { hidden: concatSequence(clip, t5), pooled: { data: pooled.data, dims: [1, pooled.dims[2]!] }, notes };
}

export async function runStableDiffusion3(model: LoadedModel, p: PipelineParams): Promise<PipelineOutput> {
  const { info } = model;
  if (!model.textEncoder2 || !model.tokenizer2) throw new BadRequestError(`${info.name} lacks text_encoder_2/tokenizer_2, which SD3 needs.`);
  const sd3Controls = p.controls ?? [];
  const sd3Control = sd3Controls.length > 0;
  if (p.mask && !p.init) throw new BadRequestError('A mask needs an image to paint into.');
  if (!p.mask && isSd3InpaintTransformer(model)) throw new BadRequestError('This is an inpainting model: attach a mask (white = repaint) with the image.');
  if (p.mask && sd3Control) throw new BadRequestError('SD3 inpainting cannot be combined with a ControlNet yet.');
  if (p.mask && p.slg && p.slg.scale > 0) throw new BadRequestError('Skip-layer guidance cannot be combined with SD3 inpainting yet.');
  if (sd3Control && p.init) throw new BadRequestError('SD3 ControlNet works from text only: drop the init image (diffusers 0.30.3 has no SD3 ControlNet img2img).');
  if (sd3Control && p.slg && p.slg.scale > 0) throw new BadRequestError('Skip-layer guidance cannot be combined with an SD3 ControlNet yet.');
  const joint = num(info.unetConfig, 'joint_attention_dim', 4096);
  const n = p.seeds.length;
  const latentShape = [info.latentChannels, p.height / info.vaeScaleFactor, p.width / info.vaeScaleFactor];

  let t0 = performance.now();
  const cfg = p.guidance > 1;
  const cond = await encodeSd3(model, p.prompt, p, joint);
  // SD3 encodes "" for a missing negative prompt (no zeroing, unlike SDXL).
  const uncond = cfg ? await encodeSd3(model, p.negativePrompt ?? '', p, joint) : null;
  const hidden = uncond ? catBatch([repeatBatch(uncond.hidden, n), repeatBatch(cond.hidden, n)]) : repeatBatch(cond.hidden, n);
  const pooled = uncond ? catBatch([repeatBatch(uncond.pooled, n), repeatBatch(cond.pooled, n)]) : repeatBatch(cond.pooled, n);
  const textMs = performance.now() - t0;

  const scheduler = createScheduler({ sampler: p.sampler, schedule: p.schedule, folderConfig: info.schedulerConfig, steps: p.steps, seeds: p.seeds });
  const generators = p.seeds.map((s) => new TorchGenerator(s));
  let timesteps = [...scheduler.timesteps];
  let latents: Tensor;
  let inpaint: Sd3InpaintStart | null = null;
  if (p.mask && p.init) {
    inpaint = await prepareSd3Inpaint(model, p.init, p.mask, p.strength, p.steps, scheduler, generators, latentShape, cfg, p.variation);
    timesteps = inpaint.timesteps;
    latents = inpaint.latents;
  } else if (p.init) {
    // SD3's own strength rule (int() after the subtraction), then x = σ·noise + (1 − σ)·x0.
    const tStart = flowImg2ImgStart(p.steps, p.strength) * scheduler.order;
    timesteps = timesteps.slice(tStart);
    if (timesteps.length === 0) throw new BadRequestError(`Strength ${p.strength} with ${p.steps} steps leaves no denoising step: raise one of them.`);
    scheduler.setBeginIndex(tStart);
    const encoded = [];
    for (const g of generators) encoded.push(await vaeEncodeSample(model.vaeEncoder!, p.init, g, info.scalingFactor, info.shiftFactor));
    const x0 = catBatch(encoded);
    const noise = startNoise(generators, latentShape, p.variation ?? null);
    latents = { data: scheduler.addNoise(x0.data, noise.data, timesteps[0]!), dims: x0.dims };
  } else {
    latents = startNoise(generators, latentShape, p.variation ?? null);
    const s = Math.fround(scheduler.initNoiseSigma);
    if (s !== 1) latents = { data: latents.data.map((v) => Math.fround(v * s)), dims: latents.dims };
  }

  // ControlNets (StableDiffusion3ControlNetPipeline, SD3MultiControlNetModel for several): summed residual feeds per
  // step; zeros when the transformer takes residuals but this job has no control image.
  const residualInputs = sd3ResidualInputs(info, model.unet);
  if (sd3Control && !residualInputs) throw new BadRequestError(`${info.name}'s transformer takes no ControlNet residuals.`);
  // Every SD3 ControlNet's config was read and checked at load (loaded-model.ts); no file I/O per job.
  const controlConfig = jointControlConfig(sd3Controls.map((c) => {
    const config = model.sd3ControlNetConfigs.get(c.graph);
    if (!config) throw new Error(`${c.graph.path}: this ControlNet was not checked when ${info.name} loaded`);
    return config;
  }));
  const controls: Sd3Control[] = [];
  if (sd3Control) {
    if (!model.vaeEncoder) throw new BadRequestError(`${info.name} has no vae_encoder, which an SD3 ControlNet needs for its control image.`);
    const rows = n * (cfg ? 2 : 1);
    // torch's global RNG, seeded with the job seed: one draw per control image, in order.
    const rng = new TorchGenerator(p.seeds[0]!);
    const shift = controlConfig.promptPooled ? info.shiftFactor : null;
    for (const c of sd3Controls) {
      const latents = await controlLatents(model.vaeEncoder, c.image, rows, rng, info.scalingFactor, shift);
      controls.push({ graph: c.graph, latents, scale: c.scale, start: c.start, end: c.end });
    }
  }
  const residuals = residualInputs ? controlFeeds(residualInputs, controls, controlConfig, { hidden, pooled }, [latentShape[1]!, latentShape[2]!]) : null;

  // Exports with a `skip_layers` input (one 0/1 per joint block) get zeros on every ordinary call.
  const skipInput = model.unet.inputs.get('skip_layers');
  const numLayers = typeof skipInput?.shape[0] === 'number' ? skipInput.shape[0] : num(info.unetConfig, 'num_layers', 0);
  const noSkip: Record<string, Tensor> = skipInput ? { skip_layers: { data: new Float32Array(numLayers), dims: [numLayers] } } : {};
  const slg = p.slg && p.slg.scale > 0 ? p.slg : null;
  if (slg && !skipInput) throw new BadRequestError(`${info.name}'s transformer export has no skip_layers input, so skip-layer guidance is unavailable.`);
  if (slg && slg.layers.some((l) => l >= numLayers)) throw new BadRequestError(`This transformer has ${numLayers} blocks: skip layers must be 0–${numLayers - 1}.`);
  const skipMask = slg ? Float32Array.from({ length: numLayers }, (_, k) => (slg.layers.includes(k) ? 1 : 0)) : null;
  const f32 = Math.fround;

  const timing = { unetMs: 0 };
  t0 = performance.now();
  latents = await denoise({
    scheduler, timesteps, latents, guidance: p.guidance, guidanceRescale: p.guidanceRescale,
    noise: noiseSampler(generators, latentShape), signal: p.signal, timing, onStep: p.onStep,
    buildInput: inpaint?.buildInput, afterStep: inpaint?.afterStep,
    model: async (input, t, i) => {
      const extra = residuals ? await residuals.step(input, t, i, timesteps.length) : null;
      return runDenoiser(model.unet, 'hidden_states', 'out_hidden_states', input, t, (start, count) => ({
        encoder_hidden_states: sliceBatch(hidden, start, count),
        pooled_projections: sliceBatch(pooled, start, count),
        ...noSkip,
        ...extra?.(start, count),
      }));
    },
    // SD3.5's SkipLayerCFGDenoiser: strictly inside (start·N, end·N), v += scale·(v_cond − v_cond_skipped), run on
    // the conditional half only.
    refine: slg && cfg ? async ({ i, total, t, scaled, raw, pred }) => {
      if (!(i > slg.start * total && i < slg.end * total)) return;
      const condRows = (x: Tensor) => sliceBatch(x, n, n);
      const noControl = residuals?.none(n);
      const skipped = await runDenoiser(model.unet, 'hidden_states', 'out_hidden_states', scaled, t, (start, count) => ({
        encoder_hidden_states: condRows(hidden), pooled_projections: condRows(pooled),
        skip_layers: { data: skipMask!, dims: [numLayers] },
        ...noControl?.(start, count),
      }));
      const cond = raw.subarray(raw.length / 2);
      const s = f32(slg.scale);
      for (let k = 0; k < pred.length; k++) pred[k] = pred[k]! + f32(s * f32(cond[k]! - skipped[k]!));
    } : undefined,
  });
  const denoiseMs = performance.now() - t0;
  t0 = performance.now();
  // diffusers 0.30.3's StableDiffusion3InpaintPipeline decodes latents / scaling_factor without adding the shift its
  // other SD3 pipelines add back; same seed, same image as the reference, so inpaint (and outpaint) jobs decode alike.
  const images = await vaeDecode(model.vaeDecoder, latents, info.scalingFactor, p.mask ? null : info.shiftFactor, info.vaeScaleFactor);
  return {
    latents, images, notes: [...cond.notes],
    timings: { textMs, denoiseMs, unetMs: timing.unetMs, decodeMs: performance.now() - t0 },
  };
}
