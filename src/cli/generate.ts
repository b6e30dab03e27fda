/**
 * `sdbot generate`: run one job from the terminal, in-process on a model folder (or through a deployment's queue
 * with --queue), write one PNG per image and print a one-line JSON summary with the timings.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createEngine } from '../engine/create-engine.js';
import {
  CONTROL_PREPROCESSORS, generationRequestSchema, MAX_CONTROLS, OUTPAINT_PANS, SAMPLERS, SCHEDULES, seedForImage,
  type ControlPreprocess, type GenerationRequest, type GenerationRequestInput, type OutpaintPan,
} from '../queue/job.js';
import type { ModelEntry } from '../engine/engine.js';
import { submitAndWait } from '../queue/submit.js';

function int(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('expected a whole number');
  return n;
}

function size(v: string): { width: number; height: number } {
  const m = /^(\d+)x(\d+)$/i.exec(v.trim());
  if (!m) throw new InvalidArgumentError('expected WIDTHxHEIGHT, e.g. 1024x1024');
  return { width: Number(m[1]), height: Number(m[2]) };
}

function topLeft(v: string): { top: number; left: number } {
  const m = /^(\d+),(\d+)$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError('expected TOP,LEFT, e.g. 0,0');
  return { top: Number(m[1]), left: Number(m[2]) };
}

function intList(v: string): number[] {
  const parts = v.split(',').map((x) => Number(x.trim()));
  if (parts.some((x) => !Number.isInteger(x) || x < 0)) throw new InvalidArgumentError('expected block numbers, e.g. 7,8,9');
  return parts;
}

function pads(v: string): { left: number; right: number; top: number; bottom: number } {
  const parts = v.split(',').map((x) => Number(x.trim()));
  if (parts.length !== 4 || parts.some((x) => !Number.isInteger(x) || x < 0)) throw new InvalidArgumentError('expected LEFT,RIGHT,TOP,BOTTOM pixels, e.g. 0,256,0,0');
  const [left, right, top, bottom] = parts as [number, number, number, number];
  return { left, right, top, bottom };
}

function float(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError('expected a number');
  return n;
}

/** A repeatable option: each occurrence appends its parsed value. */
function repeatable<T>(parse: (v: string) => T): (v: string, prev: T[] | undefined) => T[] {
  return (v, prev) => [...(prev ?? []), parse(v)];
}

function preprocessor(v: string): ControlPreprocess {
  if (!(CONTROL_PREPROCESSORS as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected one of ${CONTROL_PREPROCESSORS.join(', ')}`);
  return v as ControlPreprocess;
}

/** `--controlnet model` means the model folder's own controlnet/ (or its first attached one). */
const OWN_CONTROLNET = 'model';

function asList<T>(v: T | T[] | undefined): T[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/**
 * A per-control option's value for each of n controls: given once it applies to every control, else once per
 * --control-image, in order.
 */
function perControl<T>(flag: string, v: T | T[] | undefined, n: number): (T | undefined)[] {
  const list = asList(v);
  if (list.length > 0 && n === 0) throw new InvalidArgumentError(`${flag} needs --control-image`);
  if (list.length <= 1) return Array.from({ length: n }, () => list[0]);
  if (list.length !== n) throw new InvalidArgumentError(`${flag} is given ${list.length} times for ${n} --control-image: give it once (for every control) or once per control image, in order`);
  return list;
}

/** The id a --controlnet folder gets: its folder name (with --queue, the worker's models file must use the same id). */
function controlNetId(dir: string): string {
  return basename(resolve(dir));
}

export interface GenerateOptions {
  model: string;
  /** Required except for variation jobs (stable unCLIP conditions on the image; the prompt is optional). */
  prompt?: string;
  negative?: string;
  seed?: string;
  steps?: number;
  cfg?: number;
  sampler?: string;
  schedule?: string;
  width?: number;
  height?: number;
  count?: number;
  initImage?: string;
  strength?: number;
  mask?: string;
  out: string;
  mode?: 'img2img' | 'inpaint' | 'depth' | 'upscale' | 'controlnet' | 'variation';
  depthMap?: string;
  noiseLevel?: number;
  /** One or more control images (repeatable); the per-control options below are given once or once per image. */
  controlImage?: string | string[];
  /** The ControlNet folder of each control, or OWN_CONTROLNET for the model's own. */
  controlnet?: string | string[];
  control?: ControlPreprocess | ControlPreprocess[];
  controlScale?: number | number[];
  controlStart?: number | number[];
  controlEnd?: number | number[];
  /** ControlNet guess mode for every control. */
  controlGuessMode?: boolean;
  /** Folder with depth_estimator/ + feature_extractor/ for --control depth. */
  depthEstimator?: string;
  originalSize?: { width: number; height: number };
  crop?: { top: number; left: number };
  targetSize?: { width: number; height: number };
  /** SD3.5 skip-layer guidance. */
  slgLayers?: number[];
  slgScale?: number;
  slgStart?: number;
  slgEnd?: number;
  /** SD3: T5 sequence length, or no T5 at all. */
  maxSequenceLength?: number;
  t5?: boolean;
  /** Outpainting (one of the three): pixels per side, a zoom-out factor, or a pan direction. */
  outpaint?: { left: number; right: number; top: number; bottom: number };
  zoomOut?: number;
  pan?: OutpaintPan;
  outpaintOverlap?: number;
  /** AUTOMATIC1111 variation seed and strength (0–1). */
  variationSeed?: string;
  variationStrength?: number;
  /** SDXL refiner folder for the expert hand-off, and the fraction of the schedule where it takes over. */
  refiner?: string;
  refinerSwitch?: number;
  /** Submit through a deployment's queue instead of running in-process. */
  queue?: string;
}

/** Builds the request `sdbot generate` submits; the model id is the folder's name. */
export function requestFromOptions(o: GenerateOptions): GenerationRequest {
  if (o.prompt === undefined && o.mode !== 'variation') throw new InvalidArgumentError('--prompt is required (it is optional only with --mode variation)');
  const outpaint = outpaintFromOptions(o);
  const images = asList(o.controlImage);
  if (images.length > MAX_CONTROLS) throw new InvalidArgumentError(`at most ${MAX_CONTROLS} --control-image`);
  const n = images.length;
  const nets = perControl('--controlnet', o.controlnet, n);
  const pre = perControl('--control', o.control, n);
  const scales = perControl('--control-scale', o.controlScale, n);
  const starts = perControl('--control-start', o.controlStart, n);
  const ends = perControl('--control-end', o.controlEnd, n);
  if (o.controlGuessMode && n === 0) throw new InvalidArgumentError('--control-guess-mode needs --control-image');
  const file = (path: string) => ({ kind: 'file' as const, path: resolve(path) });
  // One control on the model's own ControlNet keeps the single-control fields (the form older workers read).
  const single = n === 1 && (nets[0] === undefined || nets[0] === OWN_CONTROLNET);
  const controlFields: Partial<GenerationRequestInput> = single
    ? {
      controlImage: file(images[0]!),
      controlPreprocess: pre[0] ?? 'none',
      ...(scales[0] !== undefined ? { controlScale: scales[0] } : {}),
      ...(starts[0] !== undefined ? { controlStart: starts[0] } : {}),
      ...(ends[0] !== undefined ? { controlEnd: ends[0] } : {}),
    }
    : {
      controls: images.map((img, i) => ({
        image: file(img),
        controlnet: nets[i] === undefined || nets[i] === OWN_CONTROLNET ? null : controlNetId(nets[i]!),
        preprocess: pre[i] ?? 'none',
        ...(scales[i] !== undefined ? { scale: scales[i] } : {}),
        ...(starts[i] !== undefined ? { start: starts[i] } : {}),
        ...(ends[i] !== undefined ? { end: ends[i] } : {}),
      })),
    };
  const input: GenerationRequestInput = {
    kind: o.mode === 'depth' ? 'depth2img' : o.mode ?? (o.mask || outpaint ? 'inpaint' : o.initImage ? 'img2img' : n > 0 ? 'controlnet' : 'txt2img'),
    model: basename(resolve(o.model)),
    prompt: o.prompt ?? '',
    negativePrompt: o.negative ?? null,
    seed: o.seed ?? BigInt.asUintN(64, randomBytes(8).readBigUInt64BE()).toString(),
    sampler: (o.sampler as GenerationRequest['sampler']) ?? null,
    schedule: (o.schedule as GenerationRequest['schedule']) ?? 'default',
    steps: o.steps ?? null,
    guidance: o.cfg ?? null,
    count: o.count ?? 1,
    width: o.width ?? null,
    height: o.height ?? null,
    ...(o.strength !== undefined ? { strength: o.strength } : o.mask || outpaint ? { strength: 1 } : {}),
    initImage: o.initImage ? file(o.initImage) : null,
    maskImage: o.mask ? file(o.mask) : null,
    outpaint,
    depthImage: o.depthMap ? file(o.depthMap) : null,
    ...controlFields,
    ...(o.controlGuessMode ? { controlGuessMode: true } : {}),
    ...(o.noiseLevel !== undefined ? { noiseLevel: o.noiseLevel } : {}),
    originalSize: o.originalSize ?? null,
    cropTopLeft: o.crop ?? null,
    targetSize: o.targetSize ?? null,
    slg: o.slgLayers
      ? { layers: o.slgLayers, scale: o.slgScale ?? 2.5, start: o.slgStart ?? 0.01, end: o.slgEnd ?? 0.2 }
      : null,
    t5: o.t5 ?? true,
    ...(o.maxSequenceLength !== undefined ? { maxSequenceLength: o.maxSequenceLength } : {}),
    ...refinerFromOptions(o),
    ...(o.variationSeed !== undefined ? { variationSeed: o.variationSeed, variationStrength: o.variationStrength ?? 0.5 } : {}),
  };
  if (o.variationStrength !== undefined && o.variationSeed === undefined) throw new InvalidArgumentError('--variation-strength goes with --variation-seed');
  const parsed = generationRequestSchema.safeParse(input);
  if (!parsed.success) throw new InvalidArgumentError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return parsed.data;
}

/** --refiner / --refiner-switch as the job's refiner (the folder name is its model id, as for --controlnet). */
function refinerFromOptions(o: GenerateOptions): Pick<GenerationRequestInput, 'refiner'> {
  if (!o.refiner) {
    if (o.refinerSwitch !== undefined) throw new InvalidArgumentError('--refiner-switch goes with --refiner');
    return {};
  }
  return { refiner: { model: basename(resolve(o.refiner)), ...(o.refinerSwitch !== undefined ? { switchAt: o.refinerSwitch } : {}) } };
}

/** --outpaint / --zoom-out / --pan as the job's outpaint spec (null when none is given). */
function outpaintFromOptions(o: GenerateOptions): GenerationRequestInput['outpaint'] {
  const given = [o.outpaint, o.zoomOut, o.pan].filter((x) => x !== undefined).length;
  if (given === 0) {
    if (o.outpaintOverlap !== undefined) throw new InvalidArgumentError('--outpaint-overlap goes with --outpaint, --zoom-out or --pan');
    return null;
  }
  if (given > 1) throw new InvalidArgumentError('give one of --outpaint, --zoom-out and --pan');
  if (!o.initImage) throw new InvalidArgumentError('outpainting needs --init-image (the picture to extend)');
  const overlap = o.outpaintOverlap !== undefined ? { overlap: o.outpaintOverlap } : {};
  if (o.zoomOut !== undefined) return { zoom: o.zoomOut, ...overlap };
  if (o.pan !== undefined) return { pan: o.pan, ...overlap };
  return { ...o.outpaint!, ...overlap };
}

export async function runGenerate(o: GenerateOptions): Promise<Record<string, unknown>> {
  const request = requestFromOptions(o);
  if (o.queue) return runThroughQueue(o, o.queue, request);
  const engine = await createEngine();
  try {
    const t0 = performance.now();
    await engine.loadModel(modelEntry(o, request.model));
    if (request.refiner && resolve(o.refiner!) !== resolve(o.model)) {
      if (request.refiner.model === request.model) throw new InvalidArgumentError(`--model and --refiner folders are both named "${request.model}": rename one`);
      await engine.loadModel({ id: request.refiner.model, dir: resolve(o.refiner!) });
    }
    const loadMs = performance.now() - t0;
    const result = await engine.runJob(request);
    mkdirSync(o.out, { recursive: true });
    const files = result.images.map((img) => {
      const file = join(o.out, `${img.seed}.png`);
      writeFileSync(file, img.png);
      return file;
    });
    return {
      model: request.model,
      seeds: result.images.map((i) => i.seed),
      files,
      width: result.images[0]?.width,
      height: result.images[0]?.height,
      notes: result.notes,
      timings: roundTimings({ ...result.timings, loadMs }),
    };
  } finally {
    await engine.close();
  }
}

/** The model folder with the --controlnet folders attached under their ids and the --depth-estimator. */
export function modelEntry(o: GenerateOptions, id: string): ModelEntry {
  const controlnets: { id: string; dir: string }[] = [];
  for (const d of asList(o.controlnet)) {
    if (d === OWN_CONTROLNET) continue;
    const dir = resolve(d);
    const cid = controlNetId(dir);
    const known = controlnets.find((c) => c.id === cid);
    if (known && known.dir !== dir) throw new InvalidArgumentError(`two --controlnet folders are named "${cid}": rename one`);
    if (!known) controlnets.push({ id: cid, dir });
  }
  return {
    id, dir: resolve(o.model),
    ...(controlnets.length > 0 ? { controlnets } : {}),
    ...(o.depthEstimator ? { depthEstimator: resolve(o.depthEstimator) } : {}),
  };
}

/** The same job through the queue: the model id is the folder name, as the engine worker names it. */
async function runThroughQueue(o: GenerateOptions, redisUrl: string, request: GenerationRequest): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  if (o.depthEstimator) throw new InvalidArgumentError("--depth-estimator works in-process only: with --queue, set the model's \"depthEstimator\" in the worker's models file");
  // File references need no inlining here: the queue client stores every input image in Redis on submit, so an engine
  // on another machine gets the bytes.
  const pngs = await submitAndWait(redisUrl, request, (u) => {
    if (u.type === 'queued') console.error(`queued at position ${u.position}`);
    else if (u.type === 'progress') console.error(`step ${u.step}/${u.total}`);
  });
  mkdirSync(o.out, { recursive: true });
  const seeds = pngs.map((_, i) => seedForImage(request.seed, i).toString());
  const files = pngs.map((png, i) => {
    const file = join(o.out, `${seeds[i]}.png`);
    writeFileSync(file, png);
    return file;
  });
  return { model: request.model, queue: redisUrl, seeds, files, timings: roundTimings({ totalMs: performance.now() - t0 }) };
}

function roundTimings(t: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Math.round(v * 10) / 10]));
}

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .description('generate images from a model folder and write <seed+i>.png files')
    .requiredOption('--model <dir>', 'model folder (diffusers/Optimum ONNX layout)')
    .option('--prompt <text>', 'prompt (optional with --mode variation)')
    .option('--negative <text>', 'negative prompt ("" is an explicit empty one)')
    .option('--seed <n>', 'seed, 0 … 2^64-1 (random when omitted)')
    .option('--steps <n>', 'denoising steps', int)
    .option('--cfg <x>', 'classifier-free guidance scale', float)
    .addOption(new Option('--sampler <name>', 'sampler').choices(SAMPLERS))
    .addOption(new Option('--schedule <name>', 'sigma schedule').choices(SCHEDULES))
    .option('--width <w>', 'width in pixels', int)
    .option('--height <h>', 'height in pixels', int)
    .option('--count <n>', 'images (1-4), seeds seed … seed+n-1', int)
    .option('--init-image <file>', 'start from this image (img2img)')
    .option('--strength <x>', 'img2img / inpaint denoising strength', float)
    .option('--mask <file>', 'inpaint mask (white = repaint); needs --init-image')
    .option('--outpaint <L,R,T,B>', 'outpaint: extend the init image by these pixels per side (multiples of 8)', pads)
    .option('--zoom-out <factor>', 'outpaint: zoom out by this factor (e.g. 1.5 or 2), keeping the image size', float)
    .addOption(new Option('--pan <side>', 'outpaint: extend the init image by half its length on this side').choices(OUTPAINT_PANS))
    .option('--outpaint-overlap <px>', 'outpaint: source pixels along the new edges that are repainted too (default 8)', int)
    .addOption(new Option('--mode <mode>', 'what to do with the input image').choices(['img2img', 'inpaint', 'depth', 'upscale', 'controlnet', 'variation']))
    .option('--depth-map <file>', 'depth2img: use this depth map instead of the folder\'s estimator')
    .option('--noise-level <n>', 'x4 upscaler: noise added to the input (0-350, default 20); stable unCLIP variation: noise added to the image embedding (0-999, default 0)', int)
    .option('--control-image <file>', `ControlNet conditioning image (edges, depth, …); repeat for several ControlNets (up to ${MAX_CONTROLS}). The options below take one value for every control, or one per --control-image in order`, repeatable(String))
    .option('--controlnet <dir>', `ControlNet folder (config.json + model.onnx) for the control; "${OWN_CONTROLNET}" = the model folder's own controlnet/ (the default)`, repeatable(String))
    .option('--control <preprocessor>', `derive the conditioning from the control image: ${CONTROL_PREPROCESSORS.join(', ')} (default none)`, repeatable(preprocessor))
    .option('--control-scale <x>', 'ControlNet conditioning scale (default 1)', repeatable(float))
    .option('--control-start <x>', 'ControlNet starts at this fraction of the steps (default 0)', repeatable(float))
    .option('--control-end <x>', 'ControlNet stops at this fraction of the steps (default 1)', repeatable(float))
    .option('--control-guess-mode', 'ControlNet guess mode: the control image leads, the prompt matters less (works with an empty prompt)')
    .option('--depth-estimator <dir>', "--control depth: folder with depth_estimator/ + feature_extractor/ (e.g. an SD2-depth model; default: the model folder's own)")
    .option('--original-size <WxH>', 'SDXL micro-conditioning: original size', size)
    .option('--crop <TOP,LEFT>', 'SDXL micro-conditioning: crop top-left', topLeft)
    .option('--target-size <WxH>', 'SDXL micro-conditioning: target size', size)
    .option('--max-sequence-length <n>', 'SD3: T5 tokens (default 256)', int)
    .option('--slg-layers <list>', 'SD3.5 skip-layer guidance: transformer blocks to skip, e.g. 7,8,9', intList)
    .option('--slg-scale <x>', 'skip-layer guidance scale (default 2.5)', float)
    .option('--slg-start <x>', 'skip-layer guidance from this fraction of the steps (default 0.01)', float)
    .option('--slg-end <x>', 'skip-layer guidance until this fraction of the steps (default 0.2)', float)
    .option('--no-t5', 'SD3: run without the T5 encoder (zeros in its place; less memory)')
    .option('--variation-seed <n>', 'AUTOMATIC1111 variation seed: blend each image\'s noise toward this seed\'s (seed + i per image)')
    .option('--variation-strength <x>', 'how far toward the variation seed, 0-1 (default 0.5)', float)
    .option('--refiner <dir>', 'SDXL: hand the last part of the schedule to this refiner folder (expert hand-off)')
    .option('--refiner-switch <x>', 'fraction of the schedule where the refiner takes over (default 0.8)', float)
    .requiredOption('--out <dir>', 'output folder')
    .option('--queue <redis-url>', "submit through a deployment's queue instead of running in-process")
    .action(async (o: GenerateOptions) => {
      try {
        console.log(JSON.stringify(await runGenerate(o)));
      } catch (e) {
        console.error(`sdbot generate: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
}
