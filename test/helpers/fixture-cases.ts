/** Loads the reference pipeline cases in test/fixtures/models and maps them onto GenerationRequests. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { expect } from 'vitest';
import type { LocalEngine } from '../../src/engine/create-engine.js';
import type { PipelineOutput } from '../../src/engine/pipelines/types.js';
import { parseRequest, type GenerationRequest, type GenerationResult, type GenerationRequestInput, type SamplerName, type ScheduleName } from '../../src/queue/job.js';
import { SAMPLER_TABLE } from '../../src/engine/sampling/index.js';

export const FIXTURE_MODELS = join(import.meta.dirname, '..', 'fixtures', 'models');

export interface FixtureCase {
  id: string;
  model: string;
  pipeline: string;
  prompt: string;
  negative_prompt: string | null;
  seed: number;
  batch_size: number;
  steps: number;
  guidance_scale: number;
  width: number;
  height: number;
  strength?: number;
  sampler: string | null;
  inputs?: Record<string, string>;
  timesteps: number[];
  outputs: { latents: unknown; latents_shape: number[] };
  [key: string]: unknown;
}

export function loadCases(model: string): FixtureCase[] {
  const doc = JSON.parse(readFileSync(join(FIXTURE_MODELS, `${model}.cases.json`), 'utf8')) as { cases: FixtureCase[] };
  return doc.cases;
}

/** UI sampler names used by the fixtures → our sampler and schedule. */
const UI_SAMPLERS: Record<string, [SamplerName, ScheduleName]> = {
  'Euler a': ['euler_a', 'default'],
  Euler: ['euler', 'default'],
  DDIM: ['ddim', 'default'],
  PNDM: ['pndm', 'default'],
  'DPM++ 2M': ['dpmpp_2m', 'default'],
  'DPM++ 2M Karras': ['dpmpp_2m', 'karras'],
  'DPM++ SDE': ['dpmpp_sde', 'default'],
  'DPM++ SDE Karras': ['dpmpp_sde', 'karras'],
};

/** A case's sampler: null means diffusers ran the folder's own scheduler, whatever the engine's default would be. */
function folderSampler(model: string): [SamplerName, ScheduleName] {
  const cfg = JSON.parse(readFileSync(join(FIXTURE_MODELS, model, 'scheduler', 'scheduler_config.json'), 'utf8')) as { _class_name: string };
  const spec = SAMPLER_TABLE.find((s) => s.diffusersClass === cfg._class_name && Object.keys(s.overrides).length === 0);
  if (!spec) throw new Error(`no sampler for ${cfg._class_name}`);
  return [spec.name, 'default'];
}

export function caseRequest(c: FixtureCase): GenerationRequestInput {
  const sampler = c.sampler === null ? folderSampler(c.model) : UI_SAMPLERS[c.sampler];
  if (sampler === undefined) throw new Error(`unmapped fixture sampler ${c.sampler}`);
  const kinds: Record<string, GenerationRequestInput['kind']> = { txt2img: 'txt2img', img2img: 'img2img', inpaint: 'inpaint', upscale: 'upscale', depth2img: 'depth2img', controlnet: 'controlnet', refiner_handoff: 'txt2img', variation: 'variation' };
  const file = (name: string | undefined) => (name ? { kind: 'file' as const, path: join(FIXTURE_MODELS, name) } : null);
  return {
    kind: kinds[c.pipeline] ?? 'txt2img',
    // The expert hand-off case is a base job with the refiner attached.
    model: typeof c['base_model'] === 'string' ? c['base_model'] : c.model,
    ...(typeof c['denoising_start'] === 'number' && typeof c['base_model'] === 'string' ? { refiner: { model: c.model, switchAt: c['denoising_start'] } } : {}),
    ...(typeof c['aesthetic_score'] === 'number' ? { aestheticScore: c['aesthetic_score'] } : {}),
    ...(typeof c['negative_aesthetic_score'] === 'number' ? { negativeAestheticScore: c['negative_aesthetic_score'] } : {}),
    prompt: c.prompt,
    negativePrompt: c.negative_prompt,
    sampler: sampler?.[0] ?? null,
    schedule: sampler?.[1] ?? 'default',
    steps: c.steps,
    guidance: c.guidance_scale,
    ...(typeof c['guidance_rescale'] === 'number' ? { guidanceRescale: c['guidance_rescale'] } : {}),
    seed: String(c.seed),
    count: c.batch_size,
    // The upscaler works at the input's size (the output is 4× larger).
    width: c.pipeline === 'upscale' ? null : c.width,
    height: c.pipeline === 'upscale' ? null : c.height,
    ...(typeof c['noise_level'] === 'number' ? { noiseLevel: c['noise_level'] } : {}),
    ...(typeof c['use_t5'] === 'boolean' ? { t5: c['use_t5'] } : {}),
    ...(c['skip_layer_guidance'] ? { slg: c['skip_layer_guidance'] as { layers: number[]; scale: number; start: number; end: number } } : {}),
    ...(typeof c['max_sequence_length'] === 'number' ? { maxSequenceLength: c['max_sequence_length'] } : {}),
    strength: c.strength ?? 0.75,
    initImage: file(c.inputs?.['init_image'] ?? c.inputs?.['image']),
    maskImage: file(c.inputs?.['mask_image']),
    depthImage: file(c.inputs?.['depth_map']),
    controlImage: file(c.inputs?.['control_image']),
    ...(typeof c['controlnet_conditioning_scale'] === 'number' ? { controlScale: c['controlnet_conditioning_scale'] } : {}),
    ...(typeof c['control_guidance_start'] === 'number' ? { controlStart: c['control_guidance_start'] } : {}),
    ...(typeof c['control_guidance_end'] === 'number' ? { controlEnd: c['control_guidance_end'] } : {}),
    originalSize: hw(c['original_size']),
    cropTopLeft: Array.isArray(c['crops_coords_top_left']) ? { top: c['crops_coords_top_left'][0] as number, left: c['crops_coords_top_left'][1] as number } : null,
    targetSize: hw(c['target_size']),
  };
}

/** The fixtures write sizes as (height, width). */
function hw(v: unknown): { width: number; height: number } | null {
  return Array.isArray(v) ? { height: v[0] as number, width: v[1] as number } : null;
}

/** A fixture file as a job's image reference. */
export function fixtureFile(name: string): { kind: 'file'; path: string } {
  return { kind: 'file', path: join(FIXTURE_MODELS, name) };
}

/** One control of a ControlNet case, as the generators write it. */
export interface CaseControl {
  /** the attached ControlNet's id, null for the model folder's own */
  controlnet: string | null;
  image: string;
  preprocess?: 'none' | 'depth';
  conditioning_scale: number;
  control_guidance_start: number;
  control_guidance_end: number;
}

/**
 * A ControlNet case as a job on `model`: every control in the list form (`controlnet`, when given, replaces every
 * control's ControlNet) and the case's guess-mode flag.
 */
export function controlCaseRequest(c: FixtureCase, model: string, controlnet?: string | null): GenerationRequestInput {
  const controls = (c['controls'] as CaseControl[]).map((k) => ({
    image: fixtureFile(k.image), controlnet: controlnet === undefined ? k.controlnet : controlnet, preprocess: k.preprocess ?? 'none',
    scale: k.conditioning_scale, start: k.control_guidance_start, end: k.control_guidance_end,
  }));
  return { ...caseRequest(c), model, controlImage: null, controls, controlGuessMode: c['guess_mode'] === true };
}

export function flatten(x: unknown): number[] {
  return Array.isArray(x) ? x.flatMap(flatten) : [x as number];
}

/** Worst violation of |a - b| <= atol + rtol * |b| as a ratio (<= 1 passes). */
export function worstRatio(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / (atol + rtol * Math.abs(b[i]!)));
  return worst;
}

export async function rawRgb(png: Uint8Array | string): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/**
 * The fixture tolerances (test/fixtures/models/README.md): final latents within 2e-3 + 1e-3·|ref|, each image the
 * reference PNG's size and within 2/255 per channel.
 */
async function expectMatchesCase(c: FixtureCase, out: PipelineOutput | undefined, images: readonly { png: Uint8Array }[]): Promise<void> {
  expect(out, `${c.id}: the pipeline produced no output`).toBeDefined();
  expect(out!.latents.dims).toEqual(c.outputs.latents_shape);
  expect(worstRatio(out!.latents.data, flatten(c.outputs.latents), 2e-3, 1e-3)).toBeLessThanOrEqual(1);
  expect(images).toHaveLength(c.batch_size);
  for (let i = 0; i < c.batch_size; i++) {
    const ours = await rawRgb(images[i]!.png);
    const ref = await rawRgb(join(FIXTURE_MODELS, `${c.id}_${i}.png`));
    expect([ours.width, ours.height]).toEqual([ref.width, ref.height]);
    expect(maxAbsDiff(ours.data, ref.data)).toBeLessThanOrEqual(2);
  }
}

/** Runs a case through the engine (the path `sdbot generate` takes) and checks it with expectMatchesCase. */
export async function runCase(
  engine: LocalEngine, c: FixtureCase, request: GenerationRequest = parseRequest(caseRequest(c)),
): Promise<{ result: GenerationResult; out: PipelineOutput }> {
  let out: PipelineOutput | undefined;
  const result = await engine.runJob(request, { onOutput: (o) => (out = o) });
  await expectMatchesCase(c, out, result.images);
  return { result, out: out! };
}
