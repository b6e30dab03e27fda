/**
 * The one options table behind `/imagine` on every platform. From it come the Discord command JSON, the
 * Midjourney-style flag parser, the validator and the help text; adding an option here adds it everywhere.
 */
import { SAMPLERS, SCHEDULES } from '../../queue/job.js';

/**
 * How a value is read:
 * text: free text (a flag takes everything up to the next flag) · integer / number: ranged numbers ·
 * seed: a 64-bit whole number or "random" · size: WxH · aspect: W:H · crop: TOP,LEFT · choice: one of `choices` ·
 * model: a model id some worker holds · attachment: an uploaded image (slash option / reply only).
 */
export type OptionType = 'text' | 'integer' | 'number' | 'seed' | 'size' | 'aspect' | 'crop' | 'choice' | 'model' | 'attachment';

export interface OptionSpec {
  /** Slash option name (lower case, ≤ 32 chars) and the key of parsed values. */
  readonly name: string;
  readonly type: OptionType;
  /** One line, ≤ 100 chars (Discord's limit for option descriptions). */
  readonly help: string;
  /** Flags accepted inside the prompt, first one is the one shown in help. Empty: not a flag. */
  readonly flags: readonly string[];
  readonly required?: boolean;
  readonly min?: number;
  readonly max?: number;
  readonly choices?: readonly string[];
  /** What happens when the option is left out, for the help text. */
  readonly defaultText?: string;
  /** Model families that accept it; absent = all. */
  readonly families?: readonly string[];
  /** false: flag only, not a slash option (it duplicates slash options, like --size for width + height). */
  readonly slash?: boolean;
  /** A flag that may be given without a value. */
  readonly valueOptional?: boolean;
  /** The slash option suggests values as the user types (Discord autocomplete). */
  readonly autocomplete?: boolean;
  /** Example value for error messages and help. */
  readonly example?: string;
}

export const MODES = ['img2img', 'inpaint', 'depth', 'upscale', 'variation'] as const;
export type Mode = (typeof MODES)[number];

/** Suggested aspect ratios (any W:H within MAX_ASPECT is accepted). */
export const ASPECT_SUGGESTIONS = ['1:1', '4:3', '3:4', '3:2', '2:3', '16:9', '9:16', '21:9', '9:21'] as const;
export const MAX_ASPECT = 4;
export const MAX_SIDE = 2048;
export const MIN_SIDE = 64;

export const OPTIONS: readonly OptionSpec[] = [
  { name: 'prompt', type: 'text', help: 'What to draw. Flags like --ar 16:9 --seed 42 --no text may follow it.', flags: [], required: true },
  { name: 'negative', type: 'text', help: 'What to keep out of the picture (negative prompt)', flags: ['--no', '--negative'], example: 'text, blur' },
  { name: 'model', type: 'model', help: 'Model to use', flags: ['--model'], autocomplete: true, defaultText: 'server default' },
  { name: 'sampler', type: 'choice', help: 'Sampler', flags: ['--sampler'], choices: SAMPLERS, defaultText: "model's scheduler" },
  { name: 'schedule', type: 'choice', help: 'Noise schedule', flags: ['--schedule'], choices: SCHEDULES, defaultText: 'default' },
  { name: 'steps', type: 'integer', help: 'Denoising steps', flags: ['--steps'], min: 1, max: 150, defaultText: "model's default", example: '30' },
  { name: 'cfg', type: 'number', help: 'Guidance scale (how closely to follow the prompt)', flags: ['--cfg'], min: 0, max: 30, defaultText: "model's default", example: '7' },
  { name: 'seed', type: 'seed', help: 'Seed (0 to 2^64-1, or "random"); image i of a batch uses seed+i', flags: ['--seed'], defaultText: 'random', example: '42' },
  { name: 'ar', type: 'aspect', help: 'Aspect ratio W:H, e.g. 16:9', flags: ['--ar', '--aspect'], autocomplete: true, defaultText: "model's default size", example: '16:9' },
  { name: 'width', type: 'integer', help: 'Width in pixels (multiple of 8)', flags: ['--width', '--w'], min: MIN_SIDE, max: MAX_SIDE, example: '768' },
  { name: 'height', type: 'integer', help: 'Height in pixels (multiple of 8)', flags: ['--height', '--h'], min: MIN_SIDE, max: MAX_SIDE, example: '512' },
  { name: 'size', type: 'size', help: 'Width and height as WxH', flags: ['--size'], slash: false, example: '768x512' },
  { name: 'vseed', type: 'seed', help: "Variation seed (AUTOMATIC1111's): blend each image's noise toward this seed's (seed+i per image)", flags: ['--vseed', '--variation-seed'], slash: false, example: '1234' },
  { name: 'vstrength', type: 'number', help: 'How far toward the variation seed (0-1)', flags: ['--vstrength', '--variation-strength'], min: 0, max: 1, slash: false, defaultText: '0.5', example: '0.3' },
  { name: 'count', type: 'integer', help: 'Number of images (1-4)', flags: ['--count', '--n'], min: 1, max: 4, defaultText: '4', example: '2' },
  { name: 'strength', type: 'number', help: 'How much img2img may change the image (0-1)', flags: ['--strength'], min: 0, max: 1, defaultText: '0.75', example: '0.6' },
  { name: 'mode', type: 'choice', help: 'What to do with the image', flags: ['--mode'], choices: MODES, defaultText: 'img2img, or inpaint with a mask' },
  { name: 'orig', type: 'size', help: 'SDXL original-size conditioning WxH', flags: ['--orig'], families: ['sdxl'], example: '1024x1024' },
  { name: 'crop', type: 'crop', help: 'SDXL crop conditioning TOP,LEFT', flags: ['--crop'], families: ['sdxl'], example: '0,0' },
  { name: 'refiner', type: 'model', help: 'SDXL refiner model for the last steps', flags: ['--refiner'], families: ['sdxl'], valueOptional: true, autocomplete: true },
  { name: 'image', type: 'attachment', help: 'Start image (img2img, inpaint, depth, upscale, variation)', flags: [] },
  { name: 'mask', type: 'attachment', help: 'Inpaint mask: white = repaint, black = keep', flags: [] },
  { name: 'depth', type: 'attachment', help: 'Depth map for depth mode (estimated when left out)', flags: [] },
  { name: 'noise_level', type: 'integer', help: 'Upscale / variation: noise added to the image (x4 upscaler 0-350, default 20) or to its embedding (unCLIP variations, default 0)', flags: ['--noise-level'], min: 0, max: 999, defaultText: "pipeline's default", example: '100' },
  { name: 'control', type: 'choice', help: 'ControlNet: turn the control image into edges (canny) or a depth map (depth) first, or use it as is', flags: ['--control'], choices: ['canny', 'depth', 'none'], defaultText: 'none' },
  { name: 'control_scale', type: 'number', help: 'ControlNet strength', flags: ['--control-scale'], min: 0, max: 2, defaultText: '1', example: '0.8' },
  { name: 'control_mode', type: 'choice', help: 'ControlNet: balanced, or guess (the control image leads; works with an empty prompt)', flags: ['--control-mode'], choices: ['balanced', 'guess'], defaultText: 'balanced', slash: false },
  { name: 'control_image', type: 'attachment', help: 'ControlNet control image (edges, depth map, pose…) that steers the composition', flags: [] },
];

const byName = new Map(OPTIONS.map((o) => [o.name, o]));
const byFlag = new Map(OPTIONS.flatMap((o) => o.flags.map((f) => [f, o] as const)));

export function optionByName(name: string): OptionSpec | undefined {
  return byName.get(name);
}

export function optionByFlag(flag: string): OptionSpec | undefined {
  return byFlag.get(flag.toLowerCase());
}

export function allFlags(): string[] {
  return [...byFlag.keys()];
}

/** How an option is named to the user: its main flag where it has one, else its slash name. */
export function displayName(o: OptionSpec): string {
  return o.flags[0] ?? o.name;
}
