/**
 * A model folder with its ONNX sessions and tokenizers loaded: what the pipelines run on. Loading checks the graphs'
 * I/O against what the family's pipeline will feed, so a broken folder fails at load time with the file and tensor
 * named, not halfway through a user's job.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ModelGraph, ModelFolderError, type Provider } from './onnx/session.js';
import { readModelInfo, type ModelInfo } from './model-folder.js';
import { ClipTokenizer } from './text/clip-tokenizer.js';
import { T5Tokenizer } from './text/t5-tokenizer.js';
import { BertTokenizer } from './text/bert-tokenizer.js';
import type { EncodedPrompt } from './text/clip-tokenizer.js';
import { checkSd3ControlNet, readSd3ControlNetConfig, SD3_CONTROLNET_INPUTS, type Sd3ControlNetConfig } from './pipelines/sd3-controlnet.js';
import { loadImageConditioning, type ImageConditioning } from './image-conditioning.js';
import { acquireControlNet, checkControlNetFits, controlNetGraphPath, controlNetInputs, UNET_CONTROLNET_INPUTS, type ControlNetEntry } from './controlnet.js';
import { hasDepthEstimator, loadDepthEstimator, type DepthEstimator } from './depth-estimator.js';

/** What the pipelines need of a prompt tokenizer (CLIP BPE, or BERT WordPiece in latent-diffusion folders). */
export interface PromptTokenizer {
  readonly maxLength: number;
  encodeForModel(text: string): EncodedPrompt;
}

export interface LoadedModel {
  info: ModelInfo;
  unet: ModelGraph;
  vaeDecoder: ModelGraph;
  vaeEncoder: ModelGraph | null;
  textEncoder: ModelGraph | null;
  textEncoder2: ModelGraph | null;
  tokenizer: PromptTokenizer | null;
  tokenizer2: ClipTokenizer | null;
  /** SD3's T5 encoder and tokenizer, when the folder has them. */
  textEncoder3: ModelGraph | null;
  tokenizer3: T5Tokenizer | null;
  /** The folder's own ControlNet graph (`controlnet/`), whose residuals the UNet takes as extra inputs. */
  controlnet: ModelGraph | null;
  /** Stable unCLIP's image encoder, normalizer and noising schedule, when the folder has `image_encoder/`. */
  imageConditioning: ImageConditioning | null;
  /** ControlNets from outside the folder (models file / --controlnet), by id, each checked against the UNet. */
  controlnets: ReadonlyMap<string, ModelGraph>;
  /** SD3 ControlNets' config.json settings (SD3 folders only), for the folder's own and every attached one. */
  sd3ControlNetConfigs: ReadonlyMap<ModelGraph, Sd3ControlNetConfig>;
  /** What a control without a named ControlNet uses: the folder's own, else the first attached one. */
  defaultControlNet: ModelGraph | null;
  /**
   * Where depth estimates come from: the `depthEstimator` folder set for the model, else the model folder itself when
   * it has `depth_estimator/`; null when neither.
   */
  depthEstimatorDir: string | null;
  /** The estimator in depthEstimatorDir, loaded on first use. */
  depthEstimator(): Promise<DepthEstimator>;
  release(): Promise<void>;
}

/** What a models-file entry adds to a model folder. */
interface ModelExtras {
  controlnets?: readonly ControlNetEntry[];
  /** A folder with depth_estimator/ + feature_extractor/ (e.g. an SD2-depth model folder). */
  depthEstimator?: string;
}

async function optionalGraph(dir: string, component: string, providers: readonly Provider[]): Promise<ModelGraph | null> {
  const path = join(dir, component, 'model.onnx');
  if (!existsSync(path)) return null;
  // a ControlNet takes the UNet's timestep: int64 in legacy exports, float32 as loaded (see ModelGraph.loadWithFloatInput)
  return component === 'controlnet' ? ModelGraph.loadWithFloatInput(path, 'timestep', providers) : ModelGraph.load(path, providers);
}

function expectInputs(graph: ModelGraph, names: readonly string[]): void {
  for (const n of names) graph.input(n);
}

/** A UNet ControlNet's inputs; an SDXL model needs an SDXL ControlNet (one that also takes text_embeds and time_ids). */
function expectUnetControlNetInputs(graph: ModelGraph, info: ModelInfo, label: string): void {
  const missing = controlNetInputs(info.family).filter((n) => !graph.has(n));
  if (missing.length === 0) return;
  const sdxlOnly = info.family === 'sdxl' && missing.every((n) => n === 'text_embeds' || n === 'time_ids');
  throw new ModelFolderError(sdxlOnly
    ? `ControlNet ${label} cannot be used with ${info.name} (sdxl): it has no "text_embeds" / "time_ids" inputs, so it is not an SDXL ControlNet (${graph.path})`
    : `${graph.path}: expected inputs ${missing.map((n) => `"${n}"`).join(', ')}, found ${[...graph.inputs.keys()].join(', ')}`);
}

function expectOneOfOutputs(graph: ModelGraph, names: readonly string[]): void {
  if (!names.some((n) => graph.outputs.has(n))) {
    throw new ModelFolderError(`${graph.path}: expected an output named ${names.map((n) => `"${n}"`).join(' or ')}, found ${[...graph.outputs.keys()].join(', ')}`);
  }
}

export async function loadModel(dir: string, providers: readonly Provider[] = ['cpu'], extras: ModelExtras = {}): Promise<LoadedModel> {
  const info = readModelInfo(dir);
  const depthEstimatorDir = extras.depthEstimator ?? (hasDepthEstimator(info.dir) ? info.dir : null);
  if (extras.depthEstimator && !hasDepthEstimator(extras.depthEstimator)) {
    throw new ModelFolderError(`depth estimator for ${info.name}: ${extras.depthEstimator} has no depth_estimator/model.onnx`);
  }
  const denoiser = info.family === 'sd3' ? 'transformer' : 'unet';
  const [unet, vaeDecoder, vaeEncoder, textEncoder, textEncoder2, textEncoder3, controlnet] = await Promise.all([
    ModelGraph.loadWithFloatInput(join(info.dir, denoiser, 'model.onnx'), 'timestep', providers),
    ModelGraph.load(join(info.dir, info.decoder, 'model.onnx'), providers),
    optionalGraph(info.dir, 'vae_encoder', providers),
    optionalGraph(info.dir, info.textEncoder, providers),
    optionalGraph(info.dir, 'text_encoder_2', providers),
    optionalGraph(info.dir, 'text_encoder_3', providers),
    optionalGraph(info.dir, 'controlnet', providers),
  ]);
  const tokenizer = !info.components.has('tokenizer') ? null
    : info.textEncoder === 'bert' ? await BertTokenizer.fromFolder(join(info.dir, 'tokenizer'))
    : await ClipTokenizer.fromFolder(join(info.dir, 'tokenizer'));
  const tokenizer2 = info.components.has('tokenizer_2') ? await ClipTokenizer.fromFolder(join(info.dir, 'tokenizer_2')) : null;
  const tokenizer3 = textEncoder3 && info.components.has('tokenizer_3') ? await T5Tokenizer.fromFolder(join(info.dir, 'tokenizer_3')) : null;
  if (textEncoder3 && !tokenizer3) throw new ModelFolderError(`${info.dir}: text_encoder_3/ needs tokenizer_3/`);

  if (denoiser === 'unet') {
    expectInputs(unet, ['sample', 'timestep', 'encoder_hidden_states']);
    expectOneOfOutputs(unet, ['out_sample']);
    const c = unet.input('sample').shape[1];
    if (typeof c === 'number' && c !== info.unetInChannels) {
      throw new ModelFolderError(`${unet.path}: input "sample" has ${c} channels but unet/config.json says in_channels ${info.unetInChannels}`);
    }
  } else {
    expectInputs(unet, ['hidden_states', 'timestep', 'encoder_hidden_states', 'pooled_projections']);
    expectOneOfOutputs(unet, ['out_hidden_states']);
  }
  expectInputs(vaeDecoder, ['latent_sample']);
  expectOneOfOutputs(vaeDecoder, ['sample']);
  if (vaeEncoder) {
    expectInputs(vaeEncoder, ['sample']);
    expectOneOfOutputs(vaeEncoder, ['latent_parameters', 'latent_sample']);
  }
  if (textEncoder) expectInputs(textEncoder, ['input_ids']);
  // An SDXL refiner has only the second CLIP encoder; every other family needs the first.
  const hasText = (textEncoder && tokenizer) || (info.family === 'sdxl' && textEncoder2 && tokenizer2);
  if (!hasText) throw new ModelFolderError(`${info.dir}: missing text_encoder/ or tokenizer/`);

  if (textEncoder3) expectInputs(textEncoder3, ['input_ids']);
  const graphs = [unet, vaeDecoder, vaeEncoder, textEncoder, textEncoder2, textEncoder3, controlnet].filter((g): g is ModelGraph => g !== null);
  const releases: (() => Promise<void>)[] = [];
  const releaseAll = async () => {
    await Promise.all([...graphs.map((g) => g.release()), ...releases.map((r) => r())]);
  };
  const controlnets = new Map<string, ModelGraph>();
  const sd3ControlNetConfigs = new Map<ModelGraph, Sd3ControlNetConfig>();
  let imageConditioning: ImageConditioning | null = null;
  try {
    const sd3 = info.family === 'sd3';
    // Throws, naming both graphs, when the ControlNet's outputs cannot feed the denoiser's residual inputs.
    const checkControlNet = (graph: ModelGraph, path: string, labels: { controlnet: string; model: string }, ownFolder: boolean) => {
      if (sd3) {
        const config = readSd3ControlNetConfig(path);
        checkSd3ControlNet(info, unet, graph, config, { ...labels, ownFolder });
        sd3ControlNetConfigs.set(graph, config);
      } else {
        expectUnetControlNetInputs(graph, info, labels.controlnet);
        checkControlNetFits(graph, unet, labels);
      }
    };
    if (controlnet) checkControlNet(controlnet, controlnet.path, { controlnet: `${info.name}/controlnet`, model: info.name }, true);
    for (const entry of extras.controlnets ?? []) {
      if (controlnets.has(entry.id)) throw new ModelFolderError(`${info.name}: two ControlNets have the id "${entry.id}"`);
      if (info.family !== 'sd' && info.family !== 'sdxl' && !sd3) throw new ModelFolderError(`ControlNet ${entry.id}: only SD 1.x / 2.x, SDXL and SD3 / SD3.5 models take ControlNets here, ${info.name} is ${info.family}`);
      const path = controlNetGraphPath(entry.dir);
      const labels = { controlnet: `"${entry.id}" (${entry.dir})`, model: info.name };
      const held = await acquireControlNet(path, providers, sd3 ? SD3_CONTROLNET_INPUTS : UNET_CONTROLNET_INPUTS).catch((e: unknown) => {
        // Usually a ControlNet for the other kind of denoiser (UNet vs SD3 transformer): say which model it met.
        if (!(e instanceof ModelFolderError)) throw e;
        throw new ModelFolderError(`ControlNet ${labels.controlnet} cannot be used with ${info.name} (${info.family}): ${e.message}`);
      });
      releases.push(held.release);
      checkControlNet(held.graph, path, labels, false);
      controlnets.set(entry.id, held.graph);
    }
    imageConditioning = info.components.has('image_encoder') ? await loadImageConditioning(info.dir, unet, providers) : null;
    if (imageConditioning) graphs.push(imageConditioning.encoder);
  } catch (e) {
    await releaseAll().catch(() => {});
    throw e;
  }
  let estimator: Promise<DepthEstimator> | null = null;
  return {
    info, unet, vaeDecoder, vaeEncoder, textEncoder, textEncoder2, tokenizer, tokenizer2, textEncoder3, tokenizer3, controlnet, imageConditioning,
    controlnets, sd3ControlNetConfigs,
    defaultControlNet: controlnet ?? controlnets.values().next().value ?? null,
    depthEstimatorDir,
    depthEstimator() {
      if (!depthEstimatorDir) return Promise.reject(new ModelFolderError(`${info.name}: no depth estimator`));
      estimator ??= loadDepthEstimator(depthEstimatorDir, providers);
      return estimator;
    },
    release: async () => {
      await releaseAll();
      if (estimator) await (await estimator.catch(() => null))?.graph.release();
    },
  };
}
