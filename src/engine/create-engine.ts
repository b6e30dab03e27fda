/**
 * The engine: a registry of loaded model folders and `runJob`, which resolves a GenerationRequest against the model
 * (defaults, sizes, input images), runs the family's pipeline recipe and turns the decoded tensors into PNGs that
 * carry their generation parameters.
 */
import type { Engine, EngineOptions, ModelEntry } from './engine.js';
import { loadModel, type LoadedModel } from './loaded-model.js';
import { resolveJob } from './resolve-job.js';
import { runStableDiffusion } from './pipelines/stable-diffusion.js';
import { runSdxlWithRefiner, runStableDiffusionXL } from './pipelines/stable-diffusion-xl.js';
import { runUpscaleX4 } from './pipelines/upscale-x4.js';
import { runDepth2Img } from './pipelines/depth2img.js';
import { runStableDiffusion3 } from './pipelines/stable-diffusion-3.js';
import { runImageVariation } from './pipelines/image-variation.js';
import type { PipelineOutput, PipelineParams } from './pipelines/types.js';
import type { Tensor } from './tensor.js';
import { encodePng, latentPreview, requestInfotext, tensorToImages, type LatentFamily } from './image/index.js';
import {
  BadRequestError, type GeneratedImage, type GenerationRequest, type GenerationResult, type JobHooks, type SamplerName,
} from '../queue/job.js';
import type { Family } from './model-folder.js';
import { SAMPLER_TABLE } from './sampling/index.js';

/** Extra observation points for tests and benchmarks; the queue worker uses plain JobHooks. */
export interface EngineJobHooks extends JobHooks {
  onOutput?: (out: PipelineOutput) => void;
}

/** Minimum time between two preview images: a preview costs a PNG encode, and chat platforms rate-limit edits. */
const PREVIEW_INTERVAL_MS = 1000;

export interface LocalEngine extends Engine {
  runJob(request: GenerationRequest, hooks?: EngineJobHooks): Promise<GenerationResult>;
  getModel(id: string): LoadedModel | undefined;
}

export async function createEngine(options: EngineOptions = {}): Promise<LocalEngine> {
  const models = new Map<string, LoadedModel>();
  const providers = options.providers ?? ['cpu'];
  const loadTimes = new Map<string, number>();

  async function runJob(request: GenerationRequest, hooks: EngineJobHooks = {}): Promise<GenerationResult> {
    const started = performance.now();
    const model = models.get(request.model);
    if (!model) throw new BadRequestError(`Model "${request.model}" is not loaded here. Loaded: ${[...models.keys()].join(', ') || 'none'}.`);
    const job = await resolveJob(model, request, options.fetchInput);
    let lastPreview = 0;
    const params: PipelineParams = {
      ...job.params,
      signal: hooks.signal,
      onStep: (step: number, total: number, latents: Tensor) => {
        if (!hooks.onProgress) return;
        const now = performance.now();
        if (request.previews && (now - lastPreview >= PREVIEW_INTERVAL_MS || step === total)) {
          lastPreview = now;
          const [, c, h, w] = latents.dims as [number, 4 | 16, number, number];
          hooks.onProgress({ step, total, preview: latentPreview(latents.data, c, h, w, PREVIEW_FAMILY[model.info.family]) });
        } else {
          hooks.onProgress({ step, total });
        }
      },
    };
    const out = request.refiner ? await runWithRefiner(model, request.refiner, params) : await runPipeline(model, params);
    hooks.onOutput?.(out);
    const [, , height, width] = out.images.dims as [number, number, number, number];
    const pixels = tensorToImages(out.images.data, out.images.dims[0]!, height, width);
    const sampler = params.sampler ?? folderSampler(model.info.schedulerConfig['_class_name']);
    const images: GeneratedImage[] = [];
    for (let i = 0; i < pixels.length; i++) {
      const seed = params.seeds[i]!.toString();
      const text = requestInfotext(request, { seed, width, height, steps: params.steps, sampler, guidance: params.guidance, ...out.infotext });
      images.push({ seed, width, height, png: await encodePng(pixels[i]!, width, height, text) });
    }
    const totalMs = performance.now() - started;
    return {
      images,
      notes: [...job.notes, ...out.notes],
      timings: { loadMs: loadTimes.get(request.model) ?? 0, ...out.timings, totalMs },
    };
  }

  const engine: LocalEngine = {
    device: providers[0] === 'cpu' ? 'cpu' : `${providers[0]}:0`,
    runJob,
    getModel: (id) => models.get(id),
    async loadModel(entry: ModelEntry) {
      if (models.has(entry.id)) return;
      const t0 = performance.now();
      models.set(entry.id, await loadModel(entry.dir, providers, {
        ...(entry.controlnets ? { controlnets: entry.controlnets } : {}),
        ...(entry.depthEstimator ? { depthEstimator: entry.depthEstimator } : {}),
      }));
      loadTimes.set(entry.id, performance.now() - t0);
    },
    async unloadModel(id: string) {
      const m = models.get(id);
      models.delete(id);
      await m?.release();
    },
    loadedModels: () => [...models.keys()],
    async close() {
      await Promise.all([...models.values()].map((m) => m.release()));
      models.clear();
    },
  };

  async function runWithRefiner(base: LoadedModel, refiner: { model: string; switchAt: number }, params: PipelineParams): Promise<PipelineOutput> {
    const r = models.get(refiner.model);
    if (!r) throw new BadRequestError(`Refiner "${refiner.model}" is not loaded here. Loaded: ${[...models.keys()].join(', ')}.`);
    if (base.info.family !== 'sdxl' || r.info.family !== 'sdxl') throw new BadRequestError('A refiner hand-off needs an SDXL base and an SDXL refiner.');
    return runSdxlWithRefiner(base, r, params, refiner.switchAt);
  }

  return engine;
}

async function runPipeline(model: LoadedModel, params: PipelineParams): Promise<PipelineOutput> {
  switch (model.info.family) {
    case 'sd':
      // A folder with an image encoder is stable unCLIP (resolve-job lets only variation jobs through to it).
      if (model.imageConditioning) return runImageVariation(model, params);
      // A UNet with one channel beyond the latents is depth-conditioned (stable-diffusion-2-depth).
      return model.info.unetInChannels === model.info.latentChannels + 1 ? runDepth2Img(model, params) : runStableDiffusion(model, params);
    case 'sdxl':
      return runStableDiffusionXL(model, params);
    case 'upscale':
      return runUpscaleX4(model, params);
    case 'sd3':
      return runStableDiffusion3(model, params);
    default:
      throw new BadRequestError(`Model family "${model.info.family}" (${model.info.pipelineClass}) is not supported by this engine version yet.`);
  }
}

const PREVIEW_FAMILY: Record<Family, LatentFamily> = { sd: 'sd', sdxl: 'sdxl', sd3: 'sd3', upscale: 'x4' };

/** The sampler name of a folder's own scheduler class, for the infotext of jobs that did not pick one. */
function folderSampler(className: unknown): SamplerName {
  const spec = SAMPLER_TABLE.find((s) => s.diffusersClass === className && Object.keys(s.overrides).length === 0)
    ?? SAMPLER_TABLE.find((s) => s.diffusersClass === className);
  return spec?.name ?? 'euler';
}
