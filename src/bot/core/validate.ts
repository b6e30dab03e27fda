/**
 * Turns what a user typed (slash options and/or flags inside the prompt) into a `GenerationRequest`, or a
 * `UserError` that says exactly what is wrong and what is allowed. Synchronous and free of I/O: adapters run it
 * before their platform's acknowledgement deadline; attachments are only described here and fetched afterwards.
 */
import { randomInt } from 'node:crypto';
import { generationRequestSchema, MAX_SEED, type GenerationRequest, type JobKind, type Origin } from '../../queue/job.js';
import type { ScopeDefaults } from './bot-state.js';
import { UserError } from './errors.js';
import { closest, splitFlags } from './flags.js';
import { defaultSizeOf, type ModelCatalog, type ModelRole } from './models.js';
import { MAX_ASPECT, MAX_SIDE, MIN_SIDE, displayName, optionByName, type Mode, type OptionSpec } from './options.js';
import type { WordFilter } from './word-filter.js';
import { nearestBucket } from '../../engine/sdxl-buckets.js';

export type ImageSlot = 'image' | 'mask' | 'depth' | 'control';

/** An image somewhere on the platform, described by what the platform tells us (not yet trusted). */
export interface RemoteImage {
  url: string;
  filename?: string;
  size?: number;
  contentType?: string | null;
  width?: number | null;
  height?: number | null;
}

export type RawValue = string | number | boolean;

export interface ImagineInput {
  /** The prompt, possibly followed by flags. */
  text: string;
  /** Slash-command options other than the prompt, by option name. */
  options?: Readonly<Record<string, RawValue | undefined>>;
  images?: Partial<Record<ImageSlot, RemoteImage>>;
  origin: Origin;
}

/** The engine's CLIP tokenizer as the bot uses it: how much of a prompt the model will read. */
export interface PromptTokenizer {
  encodeForModel(text: string): { ids: ArrayLike<number>; truncated: boolean; droppedText: string };
}

export interface ValidationContext {
  catalog: ModelCatalog;
  defaults: ScopeDefaults;
  tokenizerFor?: (model: string) => PromptTokenizer | undefined;
  filter?: WordFilter;
  randomSeed?: () => string;
}

/** A checked request whose images are still to be fetched (see `attachImages`). */
export interface Draft {
  request: GenerationRequest;
  images: Partial<Record<ImageSlot, RemoteImage>>;
  /** Things worth telling the user (a cut prompt, a model chosen for the mode). */
  notes: string[];
}

type Size = { width: number; height: number };
type Parsed = {
  negative?: string; model?: string; sampler?: string; schedule?: string; steps?: number; cfg?: number;
  seed?: string; ar?: number; width?: number; height?: number; size?: Size; count?: number; strength?: number;
  mode?: Mode; orig?: Size; crop?: { top: number; left: number }; refiner?: string;
  control?: 'canny' | 'depth' | 'none'; control_scale?: number; control_mode?: 'balanced' | 'guess'; noise_level?: number;
  vseed?: string; vstrength?: number;
};

export function randomSeed(): string {
  // 32-bit seeds, like A1111: short enough to type back.
  return String(randomInt(0, 2 ** 32));
}

export function buildDraft(input: ImagineInput, ctx: ValidationContext): Draft {
  const split = splitFlags(input.text);
  const raw = mergeSlashOptions(split.values, input.options ?? {});
  const v = parseValues(raw, ctx);
  const images = input.images ?? {};
  const notes: string[] = [];

  const kind = resolveKind(v, images);
  if (v.noise_level !== undefined && kind !== 'upscale' && kind !== 'variation') {
    throw new UserError('`--noise-level` applies to `--mode upscale` and `--mode variation` only.');
  }
  // Img2img / inpaint with a control image run on the ControlNet model, as a control image alone does.
  const model = resolveModel(v, images.control !== undefined ? 'controlnet' : kind, ctx, notes);
  const family = ctx.catalog.info(model).family;
  for (const name of raw.keys()) checkFamily(optionByName(name), model, family);

  const prompt = split.prompt;
  if (!prompt && kind === 'txt2img') {
    throw new UserError('Your prompt is empty: describe what to draw, e.g. `/imagine a lighthouse at dusk --ar 16:9`.');
  }
  ctx.filter?.check(prompt);
  checkTokens(prompt, v.negative, ctx.tokenizerFor?.(model), notes);

  const size = snapToBucket(resolveSize(v, ctx.catalog.info(model)), ctx.catalog.info(model), notes);
  const refiner = v.refiner === undefined ? null : { model: resolveRefiner(v.refiner, ctx) };
  if (v.vstrength !== undefined && v.vseed === undefined) throw new UserError('`--vstrength` goes with `--vseed` (the variation seed to blend toward).');

  const request = generationRequestSchema.safeParse({
    kind,
    model,
    prompt,
    negativePrompt: v.negative ?? null,
    sampler: v.sampler ?? ctx.defaults.sampler ?? null,
    schedule: v.schedule ?? 'default',
    steps: v.steps ?? ctx.defaults.steps ?? null,
    guidance: v.cfg ?? null,
    seed: v.seed ?? (ctx.randomSeed ?? randomSeed)(),
    count: v.count ?? (kind === 'txt2img' ? (ctx.defaults.count ?? 4) : 1),
    width: size?.width ?? null,
    height: size?.height ?? null,
    originalSize: v.orig ?? null,
    cropTopLeft: v.crop ?? null,
    ...(v.strength !== undefined ? { strength: v.strength } : {}),
    ...(v.control !== undefined ? { controlPreprocess: v.control } : {}),
    ...(v.control_scale !== undefined ? { controlScale: v.control_scale } : {}),
    ...(v.control_mode === 'guess' ? { controlGuessMode: true } : {}),
    ...(v.noise_level !== undefined ? { noiseLevel: v.noise_level } : {}),
    ...(v.vseed !== undefined ? { variationSeed: v.vseed, variationStrength: v.vstrength ?? 0.5 } : {}),
    refiner,
    previews: true,
    origin: input.origin,
  });
  if (!request.success) throw new UserError(`That request doesn't add up: ${request.error.issues[0]?.message ?? 'invalid options'}.`);
  return { request: request.data, images, notes };
}

function mergeSlashOptions(flags: Map<string, string>, options: Readonly<Record<string, RawValue | undefined>>): Map<string, string> {
  const merged = new Map(flags);
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined || name === 'prompt') continue;
    const text = String(value).trim();
    const fromFlag = merged.get(name);
    const spec = optionByName(name);
    if (fromFlag !== undefined && fromFlag !== text && spec) {
      throw new UserError(`\`${displayName(spec)}\` is given twice (as an option: \`${text}\`, in the prompt: \`${fromFlag}\`): keep one.`);
    }
    merged.set(name, text);
  }
  return merged;
}

function parseValues(raw: Map<string, string>, ctx: ValidationContext): Parsed {
  const out: Record<string, unknown> = {};
  for (const [name, text] of raw) {
    const spec = optionByName(name);
    if (!spec || spec.type === 'attachment') continue;
    out[name] = parseOne(spec, text, ctx);
  }
  return out as Parsed;
}

function parseOne(spec: OptionSpec, text: string, ctx: ValidationContext): unknown {
  const label = `\`${displayName(spec)}\``;
  switch (spec.type) {
    case 'text':
      return text;
    case 'integer':
    case 'number': {
      const isInt = spec.type === 'integer';
      const ok = isInt ? /^[+-]?\d+$/.test(text) : /^[+-]?(\d+\.?\d*|\.\d+)$/.test(text);
      const n = Number(text);
      const range = `${isInt ? 'a whole number' : 'a number'} from ${spec.min} to ${spec.max}`;
      if (!ok || !Number.isFinite(n)) throw new UserError(`${label} must be ${range}; \`${text}\` isn't one.`);
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new UserError(`${label} must be ${range}; you gave ${text}.`);
      }
      if (spec.name === 'width' || spec.name === 'height') checkMultipleOf8(label, n);
      return n;
    }
    case 'seed': {
      if (/^(random|rand|-1)$/i.test(text)) return undefined;
      if (!/^\d{1,20}$/.test(text) || BigInt(text) > MAX_SEED) {
        throw new UserError(`${label} must be a whole number from 0 to ${MAX_SEED} (or "random"); \`${text}\` isn't one.`);
      }
      return BigInt(text).toString();
    }
    case 'size':
      return parseSize(label, text);
    case 'aspect': {
      const m = /^(\d+(?:\.\d+)?)[:x](\d+(?:\.\d+)?)$/i.exec(text);
      const ratio = m ? Number(m[1]) / Number(m[2]) : NaN;
      if (!m || !Number.isFinite(ratio) || ratio <= 0) {
        throw new UserError(`${label} must be a ratio like \`16:9\` or \`2:3\`; \`${text}\` isn't one.`);
      }
      if (ratio > MAX_ASPECT || ratio < 1 / MAX_ASPECT) {
        throw new UserError(`${label} ${text} is too extreme: ratios from 1:${MAX_ASPECT} to ${MAX_ASPECT}:1 are allowed.`);
      }
      return ratio;
    }
    case 'crop': {
      const m = /^(\d+),(\d+)$/.exec(text);
      if (!m) throw new UserError(`${label} must be TOP,LEFT in pixels, like \`0,0\`; \`${text}\` isn't that.`);
      return { top: Number(m[1]), left: Number(m[2]) };
    }
    case 'choice': {
      const norm = text.toLowerCase().replace(/[\s-]+/g, '_');
      const choices = spec.choices ?? [];
      const hit = choices.find((c) => c === norm) ?? (spec.name === 'sampler' && norm === 'euler_ancestral' ? 'euler_a' : undefined);
      if (!hit) {
        const near = closest(norm, choices);
        throw new UserError(`${label} can't be \`${text}\`.${near ? ` Did you mean \`${near}\`?` : ''} Allowed: ${choices.map((c) => `\`${c}\``).join(', ')}.`);
      }
      return hit;
    }
    case 'model': {
      if (text === '' && spec.valueOptional) return '';
      const known = ctx.catalog.knownIds();
      if (!known.includes(text)) {
        const near = closest(text, known);
        const list = known.length ? ` Available: ${known.map((k) => `\`${k}\``).join(', ')}.` : ' No models are available right now.';
        throw new UserError(`I don't know the model \`${text}\`.${near ? ` Did you mean \`${near}\`?` : ''}${list}`);
      }
      return text;
    }
    case 'attachment':
      return undefined;
  }
}

function parseSize(label: string, text: string): Size {
  const m = /^(\d+)[x×*](\d+)$/i.exec(text);
  if (!m) throw new UserError(`${label} must be WIDTHxHEIGHT, like \`768x512\`; \`${text}\` isn't that.`);
  const size = { width: Number(m[1]), height: Number(m[2]) };
  for (const side of [size.width, size.height]) {
    if (side < MIN_SIDE || side > MAX_SIDE) throw new UserError(`${label}: each side must be from ${MIN_SIDE} to ${MAX_SIDE} pixels; you gave ${text}.`);
    checkMultipleOf8(label, side);
  }
  return size;
}

function checkMultipleOf8(label: string, n: number): void {
  if (n % 8 !== 0) {
    const down = Math.max(MIN_SIDE, Math.floor(n / 8) * 8);
    throw new UserError(`${label}: sizes must be multiples of 8 pixels; ${n} isn't (try ${down} or ${down + 8}).`);
  }
}

const MODE_KIND: Record<Mode, JobKind> = { img2img: 'img2img', inpaint: 'inpaint', depth: 'depth2img', upscale: 'upscale', variation: 'variation' };
const KIND_ROLE: Partial<Record<JobKind, ModelRole>> = { inpaint: 'inpaint', depth2img: 'depth', upscale: 'upscaler', variation: 'variation', controlnet: 'controlnet' };

function resolveKind(v: Parsed, images: Partial<Record<ImageSlot, RemoteImage>>): JobKind {
  const has = (slot: ImageSlot) => images[slot] !== undefined;
  if (has('control')) {
    // A control image alone starts from noise; with an image it steers img2img, with a mask too inpainting.
    if (!has('image')) {
      if (v.mode) throw new UserError(`\`--mode ${v.mode}\` needs an image besides the control image: add the \`image\` option.`);
      if (has('mask')) throw new UserError('A mask needs an image to paint on: add the `image` option too (or reply to a picture).');
      if (v.strength !== undefined) throw new UserError('`--strength` only applies when you give an image (img2img).');
      return 'controlnet';
    }
    if (has('depth')) throw new UserError('A depth map is for `--mode depth`, which doesn\'t combine with a ControlNet control image.');
    const kind = v.mode ? MODE_KIND[v.mode] : has('mask') ? 'inpaint' : 'img2img';
    if (kind !== 'img2img' && kind !== 'inpaint') throw new UserError(`\`--mode ${v.mode}\` doesn't combine with a ControlNet control image (img2img and inpaint do).`);
    if (kind === 'inpaint' && !has('mask')) throw new UserError('Inpainting needs a mask: add the `mask` option (white = repaint, black = keep).');
    if (has('mask') && kind !== 'inpaint') throw new UserError(`A mask is only used for inpainting, not \`--mode ${v.mode}\`.`);
    return kind;
  }
  if (v.control !== undefined || v.control_scale !== undefined || v.control_mode !== undefined) throw new UserError('`--control`, `--control-scale` and `--control-mode` need a control image: the `control_image` option of `/imagine` on Discord, or a picture sent with the flags (mention the bot with it, or attach it in the web chat).');
  if (!has('image')) {
    if (has('mask')) throw new UserError('A mask needs an image to paint on: add the `image` option too (or reply to a picture).');
    if (v.mode) throw new UserError(`\`--mode ${v.mode}\` needs an image: attach one with the \`image\` option, or reply to a picture and mention me.`);
    if (has('depth')) throw new UserError('A depth map goes with an image: add the `image` option too.');
    if (v.strength !== undefined) throw new UserError('`--strength` only applies when you give an image (img2img).');
    return 'txt2img';
  }
  const kind = v.mode ? MODE_KIND[v.mode] : has('mask') ? 'inpaint' : has('depth') ? 'depth2img' : 'img2img';
  if (kind === 'inpaint' && !has('mask')) throw new UserError('Inpainting needs a mask: add the `mask` option (white = repaint, black = keep).');
  if (has('mask') && kind !== 'inpaint') throw new UserError(`A mask is only used for inpainting, not \`--mode ${v.mode}\`.`);
  if (has('depth') && kind !== 'depth2img') throw new UserError(`A depth map is only used with \`--mode depth\`, not \`--mode ${v.mode}\`.`);
  return kind;
}

function resolveModel(v: Parsed, kind: JobKind, ctx: ValidationContext, notes: string[]): string {
  if (v.model) return v.model;
  const base = ctx.defaults.model ?? ctx.catalog.fallbackDefault();
  const role = KIND_ROLE[kind];
  if (role) {
    const special = ctx.catalog.findRole(role, base ? ctx.catalog.info(base).family : undefined);
    if (special) {
      notes.push(`Using \`${special}\` for ${kind}.`);
      return special;
    }
    if (kind === 'upscale') throw new UserError('No worker holds an upscaler model right now, so `--mode upscale` is unavailable. Try img2img instead.');
  }
  if (!base) throw new UserError('No models are available right now: ask an admin to load one (`/sd-admin load`).');
  return base;
}

function checkFamily(spec: OptionSpec | undefined, model: string, family: string | undefined): void {
  if (!spec?.families || !family || spec.families.includes(family)) return;
  throw new UserError(`\`${displayName(spec)}\` works only with ${spec.families.join('/').toUpperCase()} models; \`${model}\` is ${family.toUpperCase()}.`);
}

function resolveSize(v: Parsed, info: ReturnType<ModelCatalog['info']>): Size | null {
  const explicit = v.width !== undefined || v.height !== undefined;
  if (v.size && explicit) throw new UserError('Give either `--size WxH` or `--width`/`--height`, not both.');
  if (v.ar !== undefined && (v.size || explicit)) throw new UserError('Give either an aspect ratio (`--ar`) or a size (`--size`, `--width`, `--height`), not both.');
  const base = defaultSizeOf(info);
  if (v.size) return v.size;
  if (explicit) return { width: v.width ?? base.width, height: v.height ?? base.height };
  if (v.ar === undefined) return null;
  // Keep the model's pixel count; round sides to multiples of 64 (what every UNet/VAE pair divides cleanly).
  const area = base.width * base.height;
  const unit = Math.min(64, base.width, base.height);
  const round = (x: number) => Math.min(MAX_SIDE, Math.max(unit, Math.round(x / unit) * unit));
  return { width: round(Math.sqrt(area * v.ar)), height: round(Math.sqrt(area / v.ar)) };
}

/**
 * SDXL was trained on ~1 MP aspect-ratio buckets and draws best at them: the bots snap an asked size or aspect ratio to
 * the nearest one and say so. (The engine itself runs any multiple-of-8 size, as diffusers does.)
 */
function snapToBucket(size: Size | null, info: ReturnType<ModelCatalog['info']>, notes: string[]): Size | null {
  if (!size || info?.family !== 'sdxl') return size;
  const b = nearestBucket(size.width, size.height, defaultSizeOf(info).width);
  if (b.width !== size.width || b.height !== size.height) {
    notes.push(`SDXL works best at its trained sizes: using the ${b.width}×${b.height} bucket (nearest to ${size.width}×${size.height}).`);
  }
  return { width: b.width, height: b.height };
}

function resolveRefiner(value: string, ctx: ValidationContext): string {
  if (value) return value;
  const found = ctx.catalog.findRole('refiner', 'sdxl');
  if (!found) throw new UserError('`--refiner` needs a model name (no worker holds a refiner model to pick by default).');
  return found;
}

function checkTokens(prompt: string, negative: string | undefined, tokenizer: PromptTokenizer | undefined, notes: string[]): void {
  if (!tokenizer) return;
  for (const [what, text] of [['prompt', prompt], ['negative prompt', negative]] as const) {
    if (!text) continue;
    const r = tokenizer.encodeForModel(text);
    if (r.truncated) {
      const dropped = r.droppedText.length > 200 ? `${r.droppedText.slice(0, 200)}…` : r.droppedText;
      notes.push(`Your ${what} is longer than the model reads (${r.ids.length} tokens); these words were dropped: "${dropped}".`);
    }
  }
}
