/**
 * Turns a GenerationRequest into pipeline parameters for one model: fills defaults, checks sizes and limits with
 * messages a chat user can act on, and loads the input images at the size the pipeline will work in.
 */
import type { LoadedModel } from './loaded-model.js';
import type { PipelineParams } from './pipelines/types.js';
import { defaultsFor } from './defaults.js';
import { nearestBucket } from './sdxl-buckets.js';
import {
  cannyEdges, decodeImage, decodeMask, describeOutpaint, imageToTensor, loadImageRef, maskToTensor, outpaintCanvas, outpaintPads,
  resizeGray, resizeRgb, rgbToGray, type RgbImage,
} from './image/index.js';
import { BadRequestError, MAX_CONTROLS, requestControls, seedForImage, type GenerationRequest, type ImageRef } from '../queue/job.js';
import { controlConditioning } from './control-image.js';
import type { ResolvedControl } from './pipelines/types.js';

/** Largest side the engine accepts, and the pixel budget: beyond them a UNet step on a chat bot's GPU takes too long. */
export const MAX_SIDE = 2048;
export const MAX_PIXELS = 2048 * 2048;

export interface ResolvedJob {
  params: Omit<PipelineParams, 'signal' | 'onStep'>;
  notes: string[];
}

export async function resolveJob(
  model: LoadedModel, request: GenerationRequest, fetchInput?: (key: string) => Promise<Uint8Array | null>,
): Promise<ResolvedJob> {
  const notes: string[] = [];
  const { info } = model;
  const defaults = defaultsFor(info);
  const mult = info.vaeScaleFactor;

  const needsInit = request.kind === 'img2img' || request.kind === 'inpaint' || request.kind === 'depth2img' || request.kind === 'upscale' || request.kind === 'variation';
  if (needsInit && !request.initImage) throw new BadRequestError(`A ${request.kind} job needs an image: attach one or reply to one.`);
  if (request.outpaint) {
    if (request.kind !== 'inpaint') throw new BadRequestError('Outpainting is an inpaint job: send it as kind "inpaint".');
    if (request.maskImage) throw new BadRequestError('An outpaint job makes its own mask: leave the mask out.');
  } else if (request.kind === 'inpaint' && !request.maskImage) {
    throw new BadRequestError('Inpainting needs a mask image (white = repaint).');
  }
  // A stable unCLIP UNet is conditioned on an image embedding (class_labels): it makes variations and nothing else.
  const embedsImage = model.imageConditioning !== null;
  if (embedsImage && request.kind !== 'variation') {
    throw new BadRequestError(`${info.name} is an image-variation model (stable unCLIP): it makes variations of an image (variation mode), not ${request.kind}.`);
  }

  // A txt2img request ignores stray attachments rather than silently becoming img2img at full strength.
  if (request.kind === 'controlnet' && (request.initImage || request.maskImage)) {
    throw new BadRequestError('A "controlnet" job starts from noise: to start from a picture, send an img2img (or inpaint) job with the control image.');
  }
  const useImages = request.kind !== 'txt2img' && request.kind !== 'controlnet';
  const initBytes = useImages && request.initImage ? await readRef(request.initImage, fetchInput) : null;
  const source = initBytes ? await decodeImage(initBytes) : null;
  // Outpainting: the init image becomes the larger canvas and the mask is built here (white = the new area).
  let init: RgbImage | null = source;
  let outpaintMask: Uint8Array | null = null;
  if (source && request.outpaint) {
    const pads = outpaintPads(request.outpaint, source.width, source.height, MAX_SIDE);
    const built = outpaintCanvas(source, pads, request.outpaint.overlap);
    init = built.canvas;
    outpaintMask = built.mask;
    notes.push(`Outpainting (${describeOutpaint(request.outpaint)}): ${source.width}×${source.height} → ${init.width}×${init.height} canvas.`);
  }

  // Size: the request's, else the init image's (floored to the VAE's multiple, as diffusers' image processor does),
  // else the model's default. A zoom-out keeps the source's size: the larger canvas is shrunk into it. An unCLIP
  // variation does not start from the image's pixels: the model's default, as diffusers.
  const sizeFrom = embedsImage ? null : source && request.outpaint && 'zoom' in request.outpaint ? source : init;
  let width = request.width ?? (sizeFrom ? sizeFrom.width - (sizeFrom.width % mult) : info.defaultWidth);
  let height = request.height ?? (sizeFrom ? sizeFrom.height - (sizeFrom.height % mult) : info.defaultHeight);
  if (request.width === null && request.height === null && sizeFrom && (width > MAX_SIDE || height > MAX_SIDE)) {
    const s = MAX_SIDE / Math.max(width, height);
    width = Math.floor((width * s) / mult) * mult;
    height = Math.floor((height * s) / mult) * mult;
    notes.push(`Input image scaled to ${width}×${height} to fit the ${MAX_SIDE}px limit.`);
  }
  // SDXL: a size off its training buckets is generated as asked (diffusers does), with a note naming the nearest bucket.
  if (info.family === 'sdxl' && !init) {
    const b = nearestBucket(width, height, info.defaultWidth);
    if (b.width !== width || b.height !== height) {
      notes.push(`SDXL works best at its trained sizes: ${width}×${height} is not one; the nearest is the ${b.width}×${b.height} bucket.`);
    }
  }
  if (width % mult !== 0 || height % mult !== 0) {
    throw new BadRequestError(`Width and height must be multiples of ${mult} for this model (got ${width}×${height}).`);
  }
  if (width > MAX_SIDE || height > MAX_SIDE || width * height > MAX_PIXELS) {
    throw new BadRequestError(`${width}×${height} is too large: the limit is ${MAX_SIDE} px a side.`);
  }

  let initTensor = null;
  let maskTensor = null;
  if (init && !embedsImage) {
    // diffusers' VaeImageProcessor resamples with LANCZOS; the x4 upscaler's processor is configured for bicubic.
    const filter = info.family === 'upscale' ? 'bicubic' : 'lanczos';
    const rgb = init.width === width && init.height === height ? init.rgb : resizeRgb(init.rgb, init.width, init.height, { width, height }, filter);
    initTensor = { data: imageToTensor(rgb, width, height), dims: [1, 3, height, width] };
  }
  if (outpaintMask && init) {
    // As diffusers' mask processor: LANCZOS to the output size, then binarised.
    const m = init.width === width && init.height === height ? outpaintMask : resizeGray(outpaintMask, init.width, init.height, { width, height }, 'lanczos');
    maskTensor = { data: maskToTensor(m, width, height), dims: [1, 1, height, width] };
  } else if (useImages && request.maskImage) {
    const maskBytes = await readRef(request.maskImage, fetchInput);
    const mask = await decodeMask(maskBytes, width, height);
    if (mask.resized) {
      const { from } = mask.resized;
      // A mask of another shape was drawn for another picture: stretching it would repaint the wrong region.
      if (Math.abs(Math.log(from.width / from.height) - Math.log(width / height)) > 0.02) {
        throw new BadRequestError(`The mask is ${from.width}×${from.height} but the image is ${init?.width ?? width}×${init?.height ?? height}: draw the mask on the same picture (same proportions).`);
      }
      notes.push(`Mask resized from ${from.width}×${from.height} to ${width}×${height}.`);
    }
    maskTensor = { data: maskToTensor(mask.mask, width, height), dims: [1, 1, height, width] };
  }

  const controls = await resolveControls(model, request, width, height, fetchInput);

  let depthMap = null;
  if (useImages && request.depthImage) {
    const d = await decodeImage(await readRef(request.depthImage, fetchInput));
    // The depth pipeline reads a map as PIL "L" values / 255.
    depthMap = { data: Float32Array.from(rgbToGray(d.rgb), (v) => Math.fround(v / 255)), width: d.width, height: d.height };
  }

  return {
    notes,
    params: {
      initImage: init ? { rgb: init.rgb, width: init.width, height: init.height } : null,
      depthMap,
      controls,
      controlGuessMode: request.controlGuessMode,
      prompt: request.prompt,
      negativePrompt: request.negativePrompt,
      seeds: Array.from({ length: request.count }, (_, i) => seedForImage(request.seed, i)),
      variation: request.variationSeed !== null && request.variationStrength > 0
        ? { seeds: Array.from({ length: request.count }, (_, i) => seedForImage(request.variationSeed!, i)), strength: request.variationStrength }
        : null,
      steps: request.steps ?? defaults.steps,
      guidance: request.guidance ?? defaults.guidance,
      guidanceRescale: request.guidanceRescale,
      sampler: request.sampler ?? defaults.sampler,
      schedule: request.schedule,
      width,
      height,
      strength: request.strength,
      init: initTensor,
      mask: maskTensor,
      noiseLevel: request.noiseLevel,
      useT5: request.t5,
      slg: request.slg,
      aestheticScore: request.aestheticScore,
      negativeAestheticScore: request.negativeAestheticScore,
      maxSequenceLength: request.maxSequenceLength,
      microConditioning: { originalSize: request.originalSize, cropTopLeft: request.cropTopLeft, targetSize: request.targetSize },
    },
  };
}

/** Job kinds whose pipelines take ControlNet residuals; the others (depth2img, upscale, variation) have no place for them. */
const CONTROL_KINDS: ReadonlySet<GenerationRequest['kind']> = new Set(['txt2img', 'controlnet', 'img2img', 'inpaint']);
/** Model families whose pipeline implements guess mode. */
const GUESS_MODE_FAMILIES: ReadonlySet<string> = new Set(['sd', 'sdxl']);

/** The request's controls with their ControlNet graphs and conditioning images, checked against the model. */
async function resolveControls(
  model: LoadedModel, request: GenerationRequest, width: number, height: number, fetchInput?: (key: string) => Promise<Uint8Array | null>,
): Promise<ResolvedControl[]> {
  const { info } = model;
  const specs = requestControls(request);
  if (request.kind === 'controlnet' && specs.length === 0) throw new BadRequestError('A ControlNet job needs a control image (edges, depth, …).');
  if (specs.length > MAX_CONTROLS) throw new BadRequestError(`At most ${MAX_CONTROLS} ControlNet controls in one job (got ${specs.length}).`);
  if (specs.length > 0 && !CONTROL_KINDS.has(request.kind)) {
    throw new BadRequestError(`ControlNet controls go with txt2img, img2img and inpaint jobs, not ${request.kind}: drop the control image.`);
  }
  if (request.controlGuessMode) {
    if (specs.length === 0) throw new BadRequestError('Guess mode is a ControlNet setting: add a control image.');
    if (!GUESS_MODE_FAMILIES.has(info.family)) throw new BadRequestError(`ControlNet guess mode is supported for SD 1.x / 2.x and SDXL models only, not ${info.name} (${info.family}).`);
  }
  const resolved: ResolvedControl[] = [];
  for (const [k, spec] of specs.entries()) {
    const which = specs.length > 1 ? `Control ${k + 1}: ` : '';
    let graph;
    if (spec.controlnet === null) {
      graph = model.defaultControlNet;
      if (!graph) throw new BadRequestError(`${which}${info.name} has no ControlNet (no controlnet/ folder, none attached in the models file): pick a model with one.`);
    } else {
      graph = model.controlnets.get(spec.controlnet);
      if (!graph) {
        const known = [...model.controlnets.keys()];
        throw new BadRequestError(`${which}ControlNet "${spec.controlnet}" is not attached to ${info.name}${known.length ? ` (attached: ${known.join(', ')})` : ' (it has none attached)'}.`);
      }
    }
    if (spec.start >= spec.end) throw new BadRequestError(`${which}the ControlNet start must come before its end.`);
    const decoded = await decodeImage(await readRef(spec.image, fetchInput));
    resolved.push({ graph, image: await controlConditioning(model, decoded, spec.preprocess, width, height), scale: spec.scale, start: spec.start, end: spec.end });
  }
  return resolved;
}

async function readRef(ref: ImageRef, fetchInput?: (key: string) => Promise<Uint8Array | null>): Promise<Uint8Array> {
  return loadImageRef(ref, fetchInput);
}
