/**
 * The job contract shared by every bot process and every engine worker.
 *
 * A `GenerationRequest` is what a chat command becomes and what the engine executes. Everything else (queue
 * payloads, button follow-ups, PNG metadata) derives from it. Seeds are decimal strings end to end: they range over
 * 0 … 2^64−1 and a JS number would silently lose bits above 2^53.
 */
import { z } from 'zod';

export const MAX_SEED = (1n << 64n) - 1n;

/**
 * What a job does. `controlnet` is txt2img with controls (kept for older clients); txt2img, img2img and inpaint jobs
 * may carry controls too (`controlImage` / `controls`), which is how ControlNet img2img and inpaint are asked for.
 */
export const JOB_KINDS = ['txt2img', 'img2img', 'inpaint', 'depth2img', 'upscale', 'variation', 'controlnet'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

/** Sampler names in the common (A1111 / ComfyUI) vocabulary; the engine maps each to its diffusers scheduler. */
export const SAMPLERS = [
  'euler', 'euler_a', 'heun', 'dpm2', 'dpm2_a', 'lms', 'dpmpp_2m', 'dpmpp_2m_sde', 'dpmpp_sde', 'dpm_singlestep',
  'ddim', 'ddpm', 'pndm', 'unipc', 'deis', 'lcm', 'flow_euler', 'flow_dpmpp_2m',
] as const;
export type SamplerName = (typeof SAMPLERS)[number];

export const SCHEDULES = ['default', 'karras', 'exponential'] as const;
export type ScheduleName = (typeof SCHEDULES)[number];

export const seedSchema = z
  .string()
  .regex(/^\d{1,20}$/, 'seed must be a whole number')
  .refine((s) => BigInt(s) <= MAX_SEED, 'seed must be at most 2^64-1');

/**
 * A reference to an image the engine needs (init image, mask, depth map, control image). Bots put attachment bytes
 * in Redis (the result store) and pass a key; the CLI and in-process callers may pass a file path or raw bytes.
 */
export const imageRefSchema = z.union([
  z.object({ kind: z.literal('file'), path: z.string().min(1) }),
  z.object({ kind: z.literal('redis'), key: z.string().min(1) }),
  z.object({ kind: z.literal('bytes'), base64: z.string().min(1) }),
]);
export type ImageRef = z.infer<typeof imageRefSchema>;

export const CONTROL_PREPROCESSORS = ['none', 'canny', 'depth'] as const;
export type ControlPreprocess = (typeof CONTROL_PREPROCESSORS)[number];

/** ControlNets one job may combine: each adds a ControlNet pass per step. */
export const MAX_CONTROLS = 3;

/** One ControlNet control of a job. */
export const controlSchema = z.object({
  image: imageRefSchema,
  /** A ControlNet the worker attached to the model (models file `controlnets`, by id); null = the model's default. */
  controlnet: z.string().min(1).max(100).nullable().default(null),
  preprocess: z.enum(CONTROL_PREPROCESSORS).default('none'),
  scale: z.number().min(0).max(2).default(1),
  start: z.number().min(0).max(1).default(0),
  end: z.number().min(0).max(1).default(1),
});
export type ControlSpec = z.infer<typeof controlSchema>;

const sizeSchema = z.object({ width: z.number().int().positive(), height: z.number().int().positive() });

/** Pixels added on one side of an outpaint canvas (at the source image's scale). */
const outpaintPadSchema = z.number().int().min(0).max(2048).refine((v) => v % 8 === 0, 'outpaint padding must be a multiple of 8 pixels');
/** Pixels of the source along each extended side that are repainted too, so the seam blends. */
const outpaintOverlapSchema = z.number().int().min(0).max(256).default(8);

export const OUTPAINT_PANS = ['left', 'right', 'up', 'down'] as const;
export type OutpaintPan = (typeof OUTPAINT_PANS)[number];

/**
 * Outpainting on an inpaint job: the engine places the init image inside a larger canvas, fills the new area by
 * extending the edge pixels outward, masks the new area (plus `overlap` pixels into the source) and inpaints.
 * Three forms: explicit padding in pixels; `zoom` (the canvas grows by that factor around the centre and the output
 * keeps the source's size, Midjourney's Zoom Out); `pan` (one side grows by half the image's length along it).
 */
export const outpaintSchema = z.union([
  z.object({ zoom: z.number().gt(1).max(4), overlap: outpaintOverlapSchema }).strict(),
  z.object({ pan: z.enum(OUTPAINT_PANS), overlap: outpaintOverlapSchema }).strict(),
  z
    .object({
      left: outpaintPadSchema.default(0), right: outpaintPadSchema.default(0),
      top: outpaintPadSchema.default(0), bottom: outpaintPadSchema.default(0),
      overlap: outpaintOverlapSchema,
    })
    .strict()
    .refine((p) => p.left + p.right + p.top + p.bottom > 0, 'outpaint needs at least one side to extend'),
]);
export type OutpaintSpec = z.infer<typeof outpaintSchema>;

export const originSchema = z.object({
  platform: z.enum(['discord', 'slack', 'web', 'cli']),
  /** Discord guild / Slack team; absent for DMs and the CLI. */
  guildId: z.string().optional(),
  channelId: z.string().optional(),
  userId: z.string(),
  userName: z.string().optional(),
  /** Thread or message the result should answer (Slack thread_ts, Discord message id). */
  replyTo: z.string().optional(),
  /** Platform-specific handle to edit the progress message (interaction token, Slack ts…). Opaque to the core. */
  handle: z.record(z.string(), z.string()).optional(),
});
export type Origin = z.infer<typeof originSchema>;

export const generationRequestSchema = z.object({
  kind: z.enum(JOB_KINDS).default('txt2img'),
  /** Model id as the workers know it (folder name unless the models file names it). */
  model: z.string().min(1),
  prompt: z.string().max(4000),
  /** null = none given. Differs from "" for SDXL (force_zeros_for_empty_prompt). */
  negativePrompt: z.string().max(4000).nullable().default(null),
  sampler: z.enum(SAMPLERS).nullable().default(null),
  schedule: z.enum(SCHEDULES).default('default'),
  steps: z.number().int().min(1).max(150).nullable().default(null),
  guidance: z.number().min(0).max(30).nullable().default(null),
  guidanceRescale: z.number().min(0).max(1).default(0),
  seed: seedSchema,
  count: z.number().int().min(1).max(4).default(1),
  /** AUTOMATIC1111's variation seed ("subseed"): the start noise is slerped toward this seed's noise by the strength. */
  variationSeed: seedSchema.nullable().default(null),
  variationStrength: z.number().min(0).max(1).default(0),
  /** null = the model's default size. Multiples of 8 (the engine checks what its UNet needs). */
  width: z.number().int().min(8).max(4096).nullable().default(null),
  height: z.number().int().min(8).max(4096).nullable().default(null),
  /** SDXL micro-conditioning; null = diffusers' defaults (target size, (0,0), target size). */
  originalSize: sizeSchema.nullable().default(null),
  cropTopLeft: z.object({ top: z.number().int().min(0), left: z.number().int().min(0) }).nullable().default(null),
  targetSize: sizeSchema.nullable().default(null),
  /** img2img / inpaint / depth2img denoising strength. */
  strength: z.number().min(0).max(1).default(0.75),
  initImage: imageRefSchema.nullable().default(null),
  maskImage: imageRefSchema.nullable().default(null),
  /** Inpaint jobs: extend the init image instead of repainting inside it (the engine builds canvas and mask). */
  outpaint: outpaintSchema.nullable().default(null),
  depthImage: imageRefSchema.nullable().default(null),
  /**
   * One ControlNet control (the single-control form; `controls` holds more). It runs on the model's default
   * ControlNet: the folder's own `controlnet/`, else the first one the models file attaches to the model.
   */
  controlImage: imageRefSchema.nullable().default(null),
  /** Turn the control image into the conditioning first: `canny` edges, `depth` (estimated), or `none` when it already is one. */
  controlPreprocess: z.enum(CONTROL_PREPROCESSORS).default('none'),
  controlScale: z.number().min(0).max(2).default(1),
  controlStart: z.number().min(0).max(1).default(0),
  controlEnd: z.number().min(0).max(1).default(1),
  /**
   * Several ControlNets at once (diffusers' MultiControlNetModel: their residuals are summed). With `controlImage`
   * also set, that control comes first; MAX_CONTROLS in all.
   */
  controls: z.array(controlSchema).max(MAX_CONTROLS).default([]),
  /**
   * ControlNet guess mode (diffusers' guess_mode, the ControlNet extension's old "Guess Mode"): the ControlNets see the
   * prompt but not the negative prompt, and the shallower residuals are weakened (×0.1 … ×1), so the control image
   * leads even with an empty prompt. Applies to every control of the job. A ControlNet whose config pools its
   * conditions (global_pool_conditions) forces it, as in diffusers.
   */
  controlGuessMode: z.boolean().default(false),
  /**
   * Noise added to the conditioning: the x4 upscaler's low-res image (0-350) or stable unCLIP's image embedding (0-999,
   * variation jobs). null = the pipeline's default (20 for the upscaler, 0 for unCLIP, as diffusers).
   */
  noiseLevel: z.number().int().min(0).max(999).nullable().default(null),
  refiner: z
    .object({ model: z.string().min(1), switchAt: z.number().min(0).max(1).default(0.8) })
    .nullable()
    .default(null),
  /** SD3: use the T5 encoder (false = zeros in its place, as diffusers does without text_encoder_3: less memory). */
  t5: z.boolean().default(true),
  /** SD3: T5 sequence length (diffusers' default 256). */
  maxSequenceLength: z.number().int().min(1).max(512).default(256),
  /**
   * SD3.5 skip-layer guidance: an extra term scale·(cond − cond with these transformer blocks skipped) between the
   * start and end fractions of the steps (SD3.5 Medium's recipe: layers 7,8,9, scale 2.5, 0.01–0.2).
   */
  slg: z
    .object({
      layers: z.array(z.number().int().min(0)).min(1),
      scale: z.number().min(0).max(10).default(2.5),
      start: z.number().min(0).max(1).default(0.01),
      end: z.number().min(0).max(1).default(0.2),
    })
    .nullable()
    .default(null),
  /** SDXL refiner aesthetic-score conditioning. */
  aestheticScore: z.number().min(0).max(10).default(6),
  negativeAestheticScore: z.number().min(0).max(10).default(2.5),
  /** Ask the engine for cheap latent previews in progress events. */
  previews: z.boolean().default(false),
  origin: originSchema.default({ platform: 'cli', userId: 'cli' }),
});

export type GenerationRequest = z.infer<typeof generationRequestSchema>;
/** What callers write: every field with a default may be left out. */
export type GenerationRequestInput = z.input<typeof generationRequestSchema>;

export function parseRequest(input: unknown): GenerationRequest {
  return generationRequestSchema.parse(input);
}

/** Every control of a request in order: the single-control fields (when a control image is set), then `controls`. */
export function requestControls(r: GenerationRequest): ControlSpec[] {
  const single: ControlSpec[] = r.controlImage
    ? [{ image: r.controlImage, controlnet: null, preprocess: r.controlPreprocess, scale: r.controlScale, start: r.controlStart, end: r.controlEnd }]
    : [];
  return [...single, ...r.controls];
}

/** The seed of image i of a batch: seed+i, wrapping like a 64-bit counter (the generator uses the low 32 bits). */
export function seedForImage(seed: string, i: number): bigint {
  return (BigInt(seed) + BigInt(i)) & MAX_SEED;
}

/** Progress the engine reports between denoising steps. */
export interface ProgressEvent {
  step: number;
  total: number;
  /** Small PNG of the linear latent→RGB approximation, when the request asked for previews. */
  preview?: Uint8Array;
}

export interface GeneratedImage {
  seed: string;
  /** PNG bytes carrying the A1111 `parameters` text chunk. */
  png: Uint8Array;
  width: number;
  height: number;
}

export interface JobTimings {
  loadMs: number;
  textMs: number;
  denoiseMs: number;
  unetMs: number;
  decodeMs: number;
  totalMs: number;
}

export interface GenerationResult {
  images: GeneratedImage[];
  timings: JobTimings;
  /** Facts worth showing the user: the SDXL bucket chosen, the prompt truncated at 77 tokens, … */
  notes: string[];
}

/** Hooks the engine calls during a job. `signal` aborts between steps. */
export interface JobHooks {
  onProgress?: (e: ProgressEvent) => void;
  signal?: AbortSignal;
}

/**
 * An error caused by the request itself (bad image, size not a multiple of 8, unknown sampler…). The queue never
 * retries these, and bots show `message` to the user as is.
 */
export class BadRequestError extends Error {
  override readonly name = 'BadRequestError';
}

/** The job was cancelled between steps. */
export class CancelledError extends Error {
  override readonly name = 'CancelledError';
}
