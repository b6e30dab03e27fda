/**
 * SD3 / SD3.5 ControlNets as diffusers' StableDiffusion3ControlNetPipeline runs them (0.30.3, and 0.32.0 for ControlNet
 * configs with SD3.5 keys), one or several (SD3MultiControlNetModel), on the export convention of
 * scripts/fixtures/README.md (tiny-sd3-controlnet, tiny-sd35-controlnet):
 *
 *   ControlNet model.onnx: hidden_states, controlnet_cond (scaled VAE latents of the control image),
 *     [encoder_hidden_states,] pooled_projections, timestep, conditioning_scale → controlnet_block_samples.{k}
 *   transformer/model.onnx: + block_controlnet_hidden_states.{i}, added to joint block i's image tokens (zeros = none)
 *
 * Several ControlNets' residuals are summed in order, pairwise up to the shortest list (diffusers zips them). Residual
 * k goes to block i with k = i // (L // K) (0.30.3) or int(i / (L / K)) (0.32.0); the context_pre_only last block
 * takes none.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ModelGraph } from '../onnx/session.js';
import { ModelFolderError } from '../onnx/session.js';
import { num, type ModelInfo } from '../model-folder.js';
import type { TorchGenerator } from '../sampling/torch-rng.js';
import { sliceBatch, type Tensor } from '../tensor.js';
import { BadRequestError } from '../../queue/job.js';
import { timestepFeed, vaeEncodeSample } from './steps.js';

const RESIDUAL_INPUT = 'block_controlnet_hidden_states.';
const CONTROL_OUTPUT = 'controlnet_block_samples.';
/** The graph inputs every SD3 ControlNet has (encoder_hidden_states only when its config has text tokens). */
export const SD3_CONTROLNET_INPUTS: readonly string[] = ['hidden_states', 'controlnet_cond', 'pooled_projections', 'timestep', 'conditioning_scale'];
/** SD3ControlNetModel config keys that diffusers writes from 0.32.0 on (SD3.5 ControlNets). */
const KEYS_SINCE_0_32 = ['force_zeros_for_pooled_projection', 'use_pos_embed', 'pos_embed_type', 'dual_attention_layers', 'qk_norm'];

/** What a ControlNet's config.json changes in how the pipeline drives it. */
export interface Sd3ControlNetConfig {
  /** joint_attention_dim set: the ControlNet reads the prompt's tokens (SD3.5 large ControlNets do not). */
  textTokens: boolean;
  /**
   * force_zeros_for_pooled_projection false (0.32.0): it takes the prompt's pooled projections instead of zeros, and
   * the control latents get the VAE shift, (x − shift) × scale.
   */
  promptPooled: boolean;
  /** The config was written by diffusers ≥ 0.32, whose transformer maps blocks with int(i / (L / K)). */
  since032: boolean;
}

/** The 0.30.3 behaviour, for ControlNets without a config.json. */
const DEFAULT_CONFIG: Sd3ControlNetConfig = { textTokens: true, promptPooled: false, since032: false };

/** Reads the config.json next to a ControlNet graph; keys 0.30.3 does not know keep its behaviour when absent. */
export function readSd3ControlNetConfig(graphPath: string): Sd3ControlNetConfig {
  const path = join(dirname(graphPath), 'config.json');
  if (!existsSync(path)) return DEFAULT_CONFIG;
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new ModelFolderError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  return {
    textTokens: cfg['joint_attention_dim'] !== null,
    // diffusers 0.32's default is true (zeros, no shift), which is also what 0.30.3 does.
    promptPooled: cfg['force_zeros_for_pooled_projection'] === false,
    since032: KEYS_SINCE_0_32.some((k) => k in cfg),
  };
}

/** Numbered names `prefix0 … prefixN` in index order; an empty list when there are none. */
function numbered(names: Iterable<string>, prefix: string): { name: string; index: number }[] {
  const out = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const index = Number(name.slice(prefix.length));
    if (Number.isInteger(index) && index >= 0) out.push({ name, index });
  }
  return out.sort((a, b) => a.index - b.index);
}

/** The transformer's ControlNet residual inputs. */
interface Sd3ResidualInputs {
  inputs: { name: string; index: number }[];
  /** Joint blocks (num_layers). */
  layers: number;
  /** Width of a residual token ([B, N, inner]). */
  inner: number;
  patch: number;
}

/** The transformer's residual inputs; null when it has none (an ordinary SD3 export). */
export function sd3ResidualInputs(info: ModelInfo, transformer: ModelGraph): Sd3ResidualInputs | null {
  const inputs = numbered(transformer.inputs.keys(), RESIDUAL_INPUT);
  if (inputs.length === 0) return null;
  const cfg = info.unetConfig;
  const spec = transformer.input(inputs[0]!.name);
  const inner = typeof spec.shape[2] === 'number' ? spec.shape[2] : num(cfg, 'num_attention_heads', 0) * num(cfg, 'attention_head_dim', 0);
  return { inputs, layers: num(cfg, 'num_layers', inputs.length + 1), inner, patch: num(cfg, 'patch_size', 2) };
}

/**
 * Which ControlNet residual each transformer input takes, by the rule of the diffusers version the ControlNet comes
 * from; throws (with `where` in the message) when some block has none, as diffusers' indexing fails there.
 */
export function blockResiduals(res: Sd3ResidualInputs, blocks: number, since032: boolean, where: string): { input: string; k: number }[] {
  const { layers } = res;
  const interval = since032 ? layers / blocks : Math.floor(layers / blocks);
  if (!(interval >= 1)) throw new ModelFolderError(`${where}: ${blocks} ControlNet blocks for a ${layers}-block transformer`);
  return res.inputs.map(({ name, index }) => {
    const k = Math.floor(index / interval);
    if (k >= blocks) throw new ModelFolderError(`${where}: ${blocks} ControlNet blocks cannot feed transformer block ${index} of ${layers} (interval ${interval})`);
    return { input: name, k };
  });
}

/** The ControlNet's residual outputs, checked to be controlnet_block_samples.0 … K-1. */
function controlOutputs(controlnet: ModelGraph): string[] {
  const outputs = numbered(controlnet.outputs.keys(), CONTROL_OUTPUT);
  if (outputs.length === 0 || outputs.some((o, k) => o.index !== k)) {
    throw new ModelFolderError(`${controlnet.path}: expected outputs ${CONTROL_OUTPUT}0 … ${CONTROL_OUTPUT}K-1, found ${[...controlnet.outputs.keys()].join(', ')}`);
  }
  return outputs.map((o) => o.name);
}

/**
 * Checks at load time that an SD3 ControlNet can drive the transformer: its inputs as its config says, residual
 * outputs that map onto the transformer's blocks, and matching widths, so one made for another base model fails with
 * both tensors named. `ownFolder`: the model folder's own controlnet/ (the message then points at the transformer).
 */
export function checkSd3ControlNet(
  info: ModelInfo, transformer: ModelGraph, controlnet: ModelGraph, config: Sd3ControlNetConfig,
  labels: { controlnet: string; model: string; ownFolder: boolean },
): void {
  const { controlnet: c, model: m } = labels;
  const res = sd3ResidualInputs(info, transformer);
  if (!res) {
    if (labels.ownFolder) {
      throw new ModelFolderError(`${transformer.path}: this folder has a controlnet/ but the transformer has no "${RESIDUAL_INPUT}N" inputs; export the transformer with one ControlNet residual input per joint block (scripts/fixtures/README.md) or remove controlnet/`);
    }
    throw new ModelFolderError(`ControlNet ${c} cannot be used with ${m}: its transformer (${transformer.path}) takes no ControlNet residuals (inputs "${RESIDUAL_INPUT}N"); export it with one per joint block (scripts/fixtures/README.md)`);
  }
  for (const n of SD3_CONTROLNET_INPUTS) controlnet.input(n);
  const hint = ' (a ControlNet made for another base model?)';
  if (config.textTokens) {
    const a = controlnet.input('encoder_hidden_states').shape[2];
    const b = transformer.input('encoder_hidden_states').shape[2];
    if (typeof a === 'number' && typeof b === 'number' && a !== b) {
      throw new ModelFolderError(`ControlNet ${c} does not fit ${m}: it takes text tokens of width ${a}, the transformer's are ${b}${hint}`);
    }
  } else if (controlnet.has('encoder_hidden_states')) {
    throw new ModelFolderError(`ControlNet ${c}: its config.json has joint_attention_dim null (no text tokens) but ${controlnet.path} has an encoder_hidden_states input; re-export it without, or fix the config`);
  }
  const outputs = controlOutputs(controlnet);
  const widths: [string, string, number | string | undefined, number | string | undefined][] = [
    ['controlnet_cond', 'latent channels', controlnet.input('controlnet_cond').shape[1], info.latentChannels],
    ['pooled_projections', 'pooled projection width', controlnet.input('pooled_projections').shape[1], transformer.input('pooled_projections').shape[1]],
    [outputs[0]!, 'residual token width', controlnet.outputs.get(outputs[0]!)!.shape[2], res.inner],
  ];
  for (const [tensor, what, a, b] of widths) {
    if (typeof a === 'number' && typeof b === 'number' && a !== b) {
      throw new ModelFolderError(`ControlNet ${c} does not fit ${m}: its "${tensor}" has ${what} ${a}, the model's are ${b}${hint}`);
    }
  }
  blockResiduals(res, outputs.length, config.since032, `ControlNet ${c} (${controlnet.path})`);
}

/**
 * The control image's latents as the pipeline makes them: [0, 1] → [-1, 1], VAE-encoded (diffusers encodes the
 * image repeated to the model batch, CFG included; one encoding sampled `rows` times is the same) and sampled with ONE
 * draw of torch's global RNG for all rows, × scaling_factor (0.30.3, and 0.32.0 for InstantX-style configs) or
 * (x − shift_factor) × scaling_factor (0.32.0 with force_zeros_for_pooled_projection false).
 * That global RNG is reproduced as a generator seeded with the job seed (torch.manual_seed(seed) before the call);
 * several controls draw from it one after another, in order.
 */
export async function controlLatents(
  vae: ModelGraph, unitImage: Tensor, rows: number, generator: TorchGenerator, scalingFactor: number, shiftFactor: number | null = null,
): Promise<Tensor> {
  const f32 = Math.fround;
  const image = { data: unitImage.data.map((v) => f32(f32(2 * v) - 1)), dims: unitImage.dims };
  return vaeEncodeSample(vae, image, generator, scalingFactor, shiftFactor, rows);
}

/** One control of a job, ready to run. */
export interface Sd3Control {
  graph: ModelGraph;
  latents: Tensor;
  scale: number;
  start: number;
  end: number;
}

/**
 * How a job's ControlNets run together. diffusers 0.32 reads the first ControlNet's config for all of them (pooled
 * projections, VAE shift, text tokens) and fails when they disagree on text tokens; 0.30.3 has none of these keys.
 */
export function jointControlConfig(configs: readonly Sd3ControlNetConfig[]): Sd3ControlNetConfig {
  const first = configs[0] ?? DEFAULT_CONFIG;
  if (configs.some((c) => c.textTokens !== first.textTokens)) {
    throw new BadRequestError('These SD3 ControlNets cannot run together: some read the prompt tokens (SD3 / InstantX style) and some do not (SD3.5 large style).');
  }
  return { ...first, since032: configs.some((c) => c.since032) };
}

/** The per-step transformer feeds: the ControlNets' summed residuals for this step, or zeros when none has effect. */
export function controlFeeds(
  res: Sd3ResidualInputs, controls: readonly Sd3Control[], config: Sd3ControlNetConfig,
  text: { hidden: Tensor; pooled: Tensor }, latentHw: readonly [number, number],
) {
  let zeros: Tensor | null = null;
  const tokens = (latentHw[0] / res.patch) * (latentHw[1] / res.patch);
  const zeroFeeds = (rows: number) => {
    if (!zeros || zeros.dims[0]! < rows) zeros = { data: new Float32Array(rows * tokens * res.inner), dims: [rows, tokens, res.inner] };
    const z = sliceBatch(zeros, 0, rows);
    return (start: number, count: number) => Object.fromEntries(res.inputs.map((f) => [f.name, sliceBatch(z, start, count)]));
  };
  // Each ControlNet alone was checked at load; summed lists are as long as the shortest, which may not map.
  const blocks = Math.min(...controls.map((c) => controlOutputs(c.graph).length));
  let feeds: { input: string; k: number }[] = [];
  try {
    if (controls.length > 0) feeds = blockResiduals(res, blocks, config.since032, 'These SD3 ControlNets cannot run together');
  } catch (e) {
    throw new BadRequestError(`${(e as Error).message}: their summed residuals are as many as the shortest list (${blocks}).`);
  }
  const pooled = config.promptPooled ? text.pooled : { data: new Float32Array(text.pooled.data.length), dims: text.pooled.dims };
  return {
    /** Feeds for a run without control (e.g. the skip-layer pass), `rows` rows. */
    none: (rows: number) => zeroFeeds(rows),
    /** Runs the ControlNets for step i of `total` on the model batch, as the pipeline's controlnet_keep rule says. */
    async step(input: Tensor, t: number, i: number, total: number): Promise<(start: number, count: number) => Record<string, Tensor>> {
      const rows = input.dims[0]!;
      let sum: Float32Array[] | null = null;
      let dims: readonly number[] = [];
      for (const c of controls) {
        const keep = i / total < c.start || (i + 1) / total > c.end ? 0 : 1;
        // Residuals × 0 add nothing, so a control outside its [start, end] skips its run (diffusers runs it).
        if (c.scale * keep === 0) continue;
        const out = await c.graph.run({
          hidden_states: input, controlnet_cond: c.latents, pooled_projections: pooled,
          ...(config.textTokens ? { encoder_hidden_states: text.hidden } : {}),
          timestep: timestepFeed(c.graph, t, rows), conditioning_scale: { data: Float32Array.of(c.scale * keep), dims: [] },
        });
        const residuals = Array.from({ length: blocks }, (_, k) => {
          const r = out[`${CONTROL_OUTPUT}${k}`];
          if (!r) throw new Error(`${c.graph.path}: no "${CONTROL_OUTPUT}${k}" output`);
          dims = r.dims;
          return r.data;
        });
        if (!sum) sum = residuals.map((r) => Float32Array.from(r));
        else for (const [k, r] of residuals.entries()) for (let j = 0; j < r.length; j++) sum[k]![j] = sum[k]![j]! + r[j]!;
      }
      if (!sum) return zeroFeeds(rows);
      const summed = sum;
      return (start, count) => Object.fromEntries(feeds.map((f) => [f.input, sliceBatch({ data: summed[f.k]!, dims }, start, count)]));
    },
  };
}
