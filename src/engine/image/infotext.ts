/**
 * The AUTOMATIC1111 "infotext": the `parameters` PNG text that A1111, ComfyUI importers, Civitai and most image
 * tools read back to reproduce an image. Format (modules/processing.py `create_infotext`):
 *
 *   <prompt>
 *   Negative prompt: <negative>            (only when non-empty)
 *   Steps: 30, Sampler: Euler a, Schedule type: Karras, CFG scale: 7, Seed: 42, Size: 512x512, Model: sd15, …
 *
 * Fields appear in A1111's order and only when they apply; a value containing a comma, colon or newline is
 * JSON-quoted (infotext_utils.quote).
 */
import { requestControls, type GenerationRequest, type SamplerName, type ScheduleName } from '../../queue/job.js';
import { describeOutpaint } from './outpaint.js';

export const INFOTEXT_VERSION = 'sdbot';

/** A1111's sampler labels (since 1.9 the schedule is a separate "Schedule type" field). */
const SAMPLER_LABELS: Record<SamplerName, string> = {
  euler: 'Euler',
  euler_a: 'Euler a',
  heun: 'Heun',
  dpm2: 'DPM2',
  dpm2_a: 'DPM2 a',
  lms: 'LMS',
  dpmpp_2m: 'DPM++ 2M',
  dpmpp_2m_sde: 'DPM++ 2M SDE',
  dpmpp_sde: 'DPM++ SDE',
  dpm_singlestep: 'DPM++ 2S',
  ddim: 'DDIM',
  ddpm: 'DDPM',
  pndm: 'PLMS',
  unipc: 'UniPC',
  deis: 'DEIS',
  lcm: 'LCM',
  flow_euler: 'Euler',
  flow_dpmpp_2m: 'DPM++ 2M',
};

const SCHEDULE_LABELS: Record<ScheduleName, string | null> = { default: null, karras: 'Karras', exponential: 'Exponential' };

export function samplerLabel(sampler: SamplerName): string {
  return SAMPLER_LABELS[sampler];
}

export type InfotextValue = string | number | bigint | boolean | null | undefined;

export interface InfotextParams {
  prompt: string;
  negativePrompt?: string | null;
  steps?: number | null;
  sampler?: SamplerName | null;
  schedule?: ScheduleName | null;
  cfgScale?: number | null;
  seed?: string | bigint | null;
  width?: number | null;
  height?: number | null;
  model?: string | null;
  denoisingStrength?: number | null;
  /** Further fields in A1111 style ("Noise level", "Refiner", …), written after the standard ones, in order. */
  extra?: Readonly<Record<string, InfotextValue>>;
  /** Defaults to "sdbot"; null leaves the field out. */
  version?: string | null;
}

/** infotext_utils.quote: JSON-quote values that would break the comma/colon syntax. */
export function quoteValue(value: string): string {
  return /[,:\n]/.test(value) ? JSON.stringify(value) : value;
}

/** Builds the infotext from explicit fields. */
export function infotext(p: InfotextParams): string {
  const fields: [string, InfotextValue][] = [
    ['Steps', p.steps],
    ['Sampler', p.sampler ? samplerLabel(p.sampler) : null],
    ['Schedule type', p.schedule ? SCHEDULE_LABELS[p.schedule] : null],
    ['CFG scale', p.cfgScale],
    ['Seed', p.seed],
    ['Size', p.width && p.height ? `${p.width}x${p.height}` : null],
    ['Model', p.model],
    ['Denoising strength', p.denoisingStrength],
    ...Object.entries(p.extra ?? {}),
    ['Version', p.version === undefined ? INFOTEXT_VERSION : p.version],
  ];
  const line = fields
    .filter((f): f is [string, string | number | bigint | boolean] => f[1] !== null && f[1] !== undefined)
    .map(([k, v]) => `${k}: ${quoteValue(String(v))}`)
    .join(', ');
  const negative = p.negativePrompt ? `\nNegative prompt: ${p.negativePrompt}` : '';
  return `${p.prompt}${negative}\n${line}`.trim();
}

/** What a pipeline settled on for one image, beyond the request itself (defaults filled in, actual size). */
export interface ResolvedImageParams {
  seed: string | bigint;
  width: number;
  height: number;
  steps: number;
  sampler: SamplerName;
  guidance: number;
  /** The noise level a pipeline used (x4 upscaler, stable unCLIP). */
  noiseLevel?: number;
  /** Overrides the strength the request implies; null = the pipeline used none (unCLIP variations). */
  denoisingStrength?: number | null;
}

const STRENGTH_KINDS = new Set<GenerationRequest['kind']>(['img2img', 'inpaint', 'depth2img', 'variation']);

/** The infotext of one generated image of a request. */
export function requestInfotext(req: GenerationRequest, r: ResolvedImageParams): string {
  const extra: Record<string, InfotextValue> = {};
  if (req.guidanceRescale > 0) extra['Guidance rescale'] = req.guidanceRescale;
  if (req.variationSeed !== null && req.variationStrength > 0) {
    extra['Variation seed'] = req.variationSeed;
    extra['Variation seed strength'] = req.variationStrength;
  }
  const noiseLevel = r.noiseLevel ?? (req.kind === 'upscale' ? req.noiseLevel : null);
  if (noiseLevel !== null) extra['Noise level'] = noiseLevel;
  if (req.outpaint) extra['Outpaint'] = describeOutpaint(req.outpaint);
  // The ControlNet extension's field shape: one quoted "Key: value, …" group per unit.
  for (const [i, c] of requestControls(req).entries()) {
    const parts = [
      ...(c.preprocess !== 'none' ? [`Module: ${c.preprocess}`] : []),
      ...(c.controlnet !== null ? [`Model: ${c.controlnet}`] : []),
      `Weight: ${c.scale}`, `Guidance Start: ${c.start}`, `Guidance End: ${c.end}`,
      ...(req.controlGuessMode ? ['Guess Mode: True'] : []),
    ];
    extra[`ControlNet ${i}`] = parts.join(', ');
  }
  if (req.refiner) {
    extra['Refiner'] = req.refiner.model;
    extra['Refiner switch at'] = req.refiner.switchAt;
  }
  return infotext({
    prompt: req.prompt,
    negativePrompt: req.negativePrompt,
    steps: r.steps,
    sampler: r.sampler,
    schedule: req.schedule,
    cfgScale: r.guidance,
    seed: r.seed,
    width: r.width,
    height: r.height,
    model: req.model,
    denoisingStrength: r.denoisingStrength !== undefined ? r.denoisingStrength : STRENGTH_KINDS.has(req.kind) && req.initImage ? req.strength : null,
    extra,
  });
}

export interface ParsedInfotext {
  prompt: string;
  negativePrompt: string;
  /** Every "Key: value" of the parameter line, unquoted ("Size" stays "512x512"). */
  params: Record<string, string>;
}

// infotext_utils.re_param: a key, then a JSON-quoted value or anything up to the next comma.
const PARAM_RE = /\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)/g;

function unquote(v: string): string {
  if (v.length < 2 || !v.startsWith('"') || !v.endsWith('"')) return v;
  try {
    const parsed: unknown = JSON.parse(v);
    return typeof parsed === 'string' ? parsed : v;
  } catch {
    return v;
  }
}

/** Parses an infotext back as A1111's `parse_generation_parameters` does. */
export function parseInfotext(text: string): ParsedInfotext {
  const lines = text.trim().split('\n');
  let last = lines.pop() ?? '';
  if ([...last.matchAll(PARAM_RE)].length < 3) {
    lines.push(last);
    last = '';
  }
  let prompt = '';
  let negativePrompt = '';
  let inNegative = false;
  for (const raw of lines) {
    let line = raw.trim();
    if (line.startsWith('Negative prompt:')) {
      inNegative = true;
      line = line.slice('Negative prompt:'.length).trim();
    }
    if (inNegative) negativePrompt += (negativePrompt === '' ? '' : '\n') + line;
    else prompt += (prompt === '' ? '' : '\n') + line;
  }
  const params: Record<string, string> = {};
  for (const m of last.matchAll(PARAM_RE)) {
    const key = m[1] as string;
    params[key] = unquote(m[2] as string);
  }
  return { prompt, negativePrompt, params };
}
