/**
 * Buttons under results and what they do. A button's id carries everything the click needs (action, image
 * index, job id) and nothing else, so buttons keep working after restarts and days later: the original request
 * comes back from the queue's store and the picture from the message the button sits under.
 */
import { outpaintPads } from '../../engine/image/index.js';
import { BadRequestError, seedForImage, type GenerationRequest, type ImageRef, type OutpaintSpec, type Origin } from '../../queue/job.js';
import { UserError } from './errors.js';
import { cropCell, imageSize, scaleImage } from './images.js';
import type { MessageButton } from './messages.js';
import type { ModelCatalog } from './models.js';
import { MAX_SIDE } from './options.js';

export const ACTIONS = {
  upscale: 'u', variation: 'v', reroll: 'r', vary_subtle: 'vs', vary_strong: 'vx', upscale2: 'u2', upscale4: 'u4',
  zoom_out2: 'z2', zoom_out15: 'z15', pan_left: 'pl', pan_right: 'pr', pan_up: 'pu', pan_down: 'pd', delete: 'd',
} as const;
export type ActionKind = keyof typeof ACTIONS;

export interface ButtonAction {
  action: ActionKind;
  /** 0-based image of the job the button refers to. */
  index: number;
  jobId: string;
}

const PREFIX = 'sd1';
/** Discord's custom_id limit, the tightest of the platforms. */
export const MAX_ACTION_ID = 100;
const CODE_TO_ACTION = new Map<string, ActionKind>(Object.entries(ACTIONS).map(([k, v]) => [v, k as ActionKind]));

export function encodeAction(a: ButtonAction): string {
  const id = `${PREFIX}:${ACTIONS[a.action]}:${a.index}:${a.jobId}`;
  if (id.length > MAX_ACTION_ID) throw new Error(`action id longer than ${MAX_ACTION_ID} chars: ${id}`);
  return id;
}

/** null for ids that are not ours (other bots' buttons, older formats). */
export function decodeAction(id: string): ButtonAction | null {
  const m = /^sd1:([a-z0-9]+):(\d):(.+)$/.exec(id);
  const action = m ? CODE_TO_ACTION.get(m[1] ?? '') : undefined;
  if (!m || !action) return null;
  return { action, index: Number(m[2]), jobId: m[3] ?? '' };
}

/** The outpaint each zoom / pan button asks the engine for (the engine builds canvas and mask). */
const OUTPAINTS = {
  zoom_out2: { zoom: 2, overlap: 8 },
  zoom_out15: { zoom: 1.5, overlap: 8 },
  pan_left: { pan: 'left', overlap: 8 },
  pan_right: { pan: 'right', overlap: 8 },
  pan_up: { pan: 'up', overlap: 8 },
  pan_down: { pan: 'down', overlap: 8 },
} as const satisfies Partial<Record<ActionKind, OutpaintSpec>>;
type OutpaintAction = keyof typeof OUTPAINTS;

/**
 * U1–U4 / V1–V4 / 🔄 / 🗑 under a grid. Under a single image, Midjourney's layout: Vary and Upscale, the zoom-outs,
 * the pan arrows, then 🔄 and 🗑 (4 rows of at most 5: Discord's limits).
 */
export function resultButtons(jobId: string, count: number): MessageButton[][] {
  const b = (action: ActionKind, index: number, label: string, style: MessageButton['style'] = 'secondary', emoji?: string): MessageButton => ({
    id: encodeAction({ action, index, jobId }), label, style, ...(emoji ? { emoji } : {}),
  });
  if (count > 1) {
    const indexes = [...Array(count).keys()];
    return [
      indexes.map((i) => b('upscale', i, `U${i + 1}`)),
      [...indexes.map((i) => b('variation', i, `V${i + 1}`)), b('reroll', 0, '', 'primary', '🔄')],
      [b('delete', 0, 'Delete', 'danger', '🗑️')],
    ];
  }
  return [
    [b('vary_subtle', 0, 'Vary (Subtle)'), b('vary_strong', 0, 'Vary (Strong)'), b('upscale2', 0, 'Upscale 2×'), b('upscale4', 0, 'Upscale 4×')],
    [b('zoom_out2', 0, 'Zoom Out 2×'), b('zoom_out15', 0, 'Zoom Out 1.5×')],
    [b('pan_left', 0, '', 'secondary', '⬅️'), b('pan_right', 0, '', 'secondary', '➡️'), b('pan_up', 0, '', 'secondary', '⬆️'), b('pan_down', 0, '', 'secondary', '⬇️')],
    [b('reroll', 0, 'Re-roll', 'primary', '🔄'), b('delete', 0, 'Delete', 'danger', '🗑️')],
  ];
}

export interface FollowUpContext {
  catalog: ModelCatalog;
  /** Who clicked: the follow-up job belongs to them. */
  origin: Origin;
  /** The images on the message the button is under (one grid, or one per image). */
  messageImages: () => Promise<Uint8Array[]>;
  putInput: (bytes: Uint8Array) => Promise<ImageRef>;
  randomSeed: () => string;
}

/** The picture a button points at: its cell of the grid, or its own attachment when results were split. */
async function pickImage(original: GenerationRequest, index: number, ctx: FollowUpContext): Promise<Uint8Array> {
  const images = await ctx.messageImages();
  const first = images[0];
  if (!first) throw new UserError("I can't find the picture on that message any more, so I can't do that.");
  if (images.length === 1) return original.count > 1 ? cropCell(first, original.count, index) : first;
  return images[index] ?? first;
}

/** Follow-ups on a picture run on an ordinary model even when the picture came from an inpaint or upscaler one. */
function baseModel(original: GenerationRequest, catalog: ModelCatalog): string {
  const role = catalog.info(original.model).role ?? 'base';
  if (role === 'base') return original.model;
  return catalog.fallbackDefault() ?? original.model;
}

/** Fields a follow-up on an image never inherits from the original (other images, size conditioning, mode). */
function imageJob(original: GenerationRequest, origin: Origin): GenerationRequest {
  return {
    ...original,
    origin,
    initImage: null, maskImage: null, outpaint: null, depthImage: null, controlImage: null, controls: [], controlGuessMode: false,
    originalSize: null, cropTopLeft: null, targetSize: null,
    refiner: null,
  };
}

export async function followUpRequest(action: ButtonAction, original: GenerationRequest, ctx: FollowUpContext): Promise<GenerationRequest> {
  const { index } = action;
  if (index >= original.count) throw new UserError(`That job made ${original.count} image(s); there is no image ${index + 1}.`);
  const family = ctx.catalog.info(original.model).family;
  const upscaler = () => ctx.catalog.findRole('upscaler', family);
  const imageSeed = () => seedForImage(original.seed, index).toString();

  switch (action.action) {
    case 'reroll':
      return { ...original, seed: ctx.randomSeed(), origin: ctx.origin };
    case 'variation':
    case 'vary_subtle':
    case 'vary_strong': {
      const png = await pickImage(original, index, ctx);
      const size = await imageSize(png);
      // V1–V4 use an image-variation model (stable unCLIP) when a worker holds one: it re-imagines the picture from
      // its CLIP embedding instead of repainting its pixels. Vary (Subtle/Strong) keep img2img: they are about strength.
      const unclip = action.action === 'variation' ? ctx.catalog.findRole('variation', family) : undefined;
      if (unclip) {
        return {
          ...imageJob(original, ctx.origin), kind: 'variation', model: unclip, initImage: await ctx.putInput(png),
          seed: ctx.randomSeed(), width: size.width, height: size.height, noiseLevel: null,
          // Another model, maybe another family: its own sampler and defaults, not the original's.
          sampler: null, schedule: 'default', steps: null, guidance: null,
        };
      }
      const strength = action.action === 'vary_subtle' ? 0.35 : action.action === 'vary_strong' ? 0.7 : 0.6;
      return {
        ...imageJob(original, ctx.origin), kind: 'img2img', model: baseModel(original, ctx.catalog), initImage: await ctx.putInput(png),
        strength, seed: ctx.randomSeed(), width: size.width, height: size.height,
      };
    }
    case 'upscale':
    case 'upscale2':
    case 'upscale4': {
      const png = await pickImage(original, index, ctx);
      const x4 = action.action === 'upscale2' ? undefined : upscaler();
      if (x4) {
        return {
          ...imageJob(original, ctx.origin), kind: 'upscale', model: x4, initImage: await ctx.putInput(png), count: 1, seed: imageSeed(),
          width: null, height: null, sampler: null, steps: null, guidance: null,
        };
      }
      if (action.action === 'upscale4') throw new UserError('Upscale 4× needs the x4 upscaler model, which no worker holds right now. Try Upscale 2×.');
      // No upscaler: a light img2img pass at twice the size sharpens the enlarged picture.
      const scaled = await scaleImage(png, 2, MAX_SIDE);
      return {
        ...imageJob(original, ctx.origin), kind: 'img2img', model: baseModel(original, ctx.catalog), initImage: await ctx.putInput(scaled.png),
        strength: 0.3, count: 1, seed: imageSeed(), width: scaled.width, height: scaled.height,
      };
    }
    case 'zoom_out2':
    case 'zoom_out15':
    case 'pan_left':
    case 'pan_right':
    case 'pan_up':
    case 'pan_down':
      return outpaintRequest(action.action, original, index, ctx);
    case 'delete':
      throw new Error('delete is not a follow-up job');
  }
}

/**
 * Zoom out / pan: an inpaint job on the picture with an outpaint spec; the engine builds the canvas and mask. The
 * size is left to the engine (a zoom keeps the picture's size, a pan grows it), but a pan past the size limit is
 * refused here, before the job queues.
 */
async function outpaintRequest(action: OutpaintAction, original: GenerationRequest, index: number, ctx: FollowUpContext): Promise<GenerationRequest> {
  const png = await pickImage(original, index, ctx);
  const outpaint = OUTPAINTS[action];
  const size = await imageSize(png);
  try {
    outpaintPads(outpaint, size.width, size.height, MAX_SIDE);
  } catch (e) {
    if (e instanceof BadRequestError) throw new UserError(e.message);
    throw e;
  }
  const model = ctx.catalog.findRole('inpaint', ctx.catalog.info(original.model).family) ?? baseModel(original, ctx.catalog);
  return {
    ...imageJob(original, ctx.origin), kind: 'inpaint', model, initImage: await ctx.putInput(png), outpaint,
    strength: 1, count: 1, seed: ctx.randomSeed(), width: null, height: null,
  };
}
