/**
 * ControlNet graphs: loading one from a folder (the model folder's own `controlnet/`, or a ControlNet distributed on
 * its own), and checking at load time that its residual outputs fit a UNet's residual inputs, so a ControlNet made
 * for another base model fails with both tensors named instead of inside ONNX Runtime during a job.
 *
 * UNet graph convention (README "Model folders"): inputs `sample`, `timestep`, `encoder_hidden_states`, `controlnet_cond`
 * ([B,3,H,W] in [0,1]), `conditioning_scale` (rank 0); outputs `down_block_i` and `mid_block`, which feed the UNet's
 * inputs `down_block_i` and `mid_block_additional_residual`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ModelFolderError, ModelGraph, type Provider } from './onnx/session.js';

/** A ControlNet attached to a model: `id` is what jobs name it by. */
export interface ControlNetEntry {
  id: string;
  dir: string;
}

/** The UNet ControlNet graph's inputs (SD3 ControlNets have their own, see pipelines/sd3-controlnet.ts). */
export const UNET_CONTROLNET_INPUTS: readonly string[] = ['sample', 'timestep', 'encoder_hidden_states', 'controlnet_cond', 'conditioning_scale'];
/** An SDXL ControlNet (ControlNetModel with addition_embed_type "text_time") also takes the UNet's added conditions. */
const SDXL_CONTROLNET_INPUTS: readonly string[] = [...UNET_CONTROLNET_INPUTS, 'text_embeds', 'time_ids'];
/** The ControlNet inputs a model family's UNet pipeline feeds. */
export function controlNetInputs(family: string): readonly string[] {
  return family === 'sdxl' ? SDXL_CONTROLNET_INPUTS : UNET_CONTROLNET_INPUTS;
}
const UNET_RESIDUAL = /^(down_block_\d+|mid_block_additional_residual)$/;

/** The UNet input a ControlNet output feeds. */
export function residualTarget(output: string): string {
  return output === 'mid_block' ? 'mid_block_additional_residual' : output;
}

/** The UNet's ControlNet residual inputs (empty for an ordinary UNet export). */
export function unetResidualInputs(unet: ModelGraph): string[] {
  return [...unet.inputs.keys()].filter((n) => UNET_RESIDUAL.test(n));
}

/**
 * The graph file of a ControlNet folder: `model.onnx` next to `config.json` (diffusers' ControlNetModel layout, as
 * ControlNets are published), or `controlnet/model.onnx` when the folder is a whole ControlNet pipeline export.
 */
export function controlNetGraphPath(dir: string): string {
  const own = join(dir, 'model.onnx');
  if (existsSync(own)) return own;
  const nested = join(dir, 'controlnet', 'model.onnx');
  if (existsSync(nested)) return nested;
  throw new ModelFolderError(`${dir}: not a ControlNet folder (no model.onnx, nor controlnet/model.onnx)`);
}

/** Loaded graphs shared by every model that attaches the same ControlNet file (a real one is 0.7–1.4 GB). */
const shared = new Map<string, { graph: Promise<ModelGraph>; refs: number }>();

/** Loads (or shares) a ControlNet graph and checks it has `inputs`; `release` when the model using it goes. */
export async function acquireControlNet(
  path: string, providers: readonly Provider[], inputs: readonly string[] = UNET_CONTROLNET_INPUTS,
): Promise<{ graph: ModelGraph; release: () => Promise<void> }> {
  const key = `${providers.join(',')}|${path}`;
  let entry = shared.get(key);
  if (!entry) {
    entry = { graph: ModelGraph.loadWithFloatInput(path, 'timestep', providers), refs: 0 };
    shared.set(key, entry);
  }
  entry.refs++;
  const held = entry;
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    if (--held.refs === 0) {
      if (shared.get(key) === held) shared.delete(key);
      await (await held.graph).release();
    }
  };
  let graph: ModelGraph;
  try {
    graph = await held.graph;
    for (const n of inputs) graph.input(n);
    if (graph.outputs.size === 0) throw new ModelFolderError(`${path}: the ControlNet graph has no outputs`);
  } catch (e) {
    await release().catch(() => {});
    throw e;
  }
  return { graph, release };
}

/**
 * Throws a readable ModelFolderError when the ControlNet's residuals do not fit the UNet: names, channel counts,
 * text-embedding width, and every residual input of the UNet covered.
 */
export function checkControlNetFits(cn: ModelGraph, unet: ModelGraph, labels: { controlnet: string; model: string }): void {
  const { controlnet: c, model: m } = labels;
  const inputs = unetResidualInputs(unet);
  if (inputs.length === 0) {
    throw new ModelFolderError(`ControlNet ${c} cannot be used with ${m}: its UNet (${unet.path}) takes no ControlNet residuals (inputs down_block_N / mid_block_additional_residual); export the UNet with them`);
  }
  const hint = ' (a ControlNet made for another base model?)';
  const cnCtx = cn.input('encoder_hidden_states').shape[2];
  const unetCtx = unet.input('encoder_hidden_states').shape[2];
  if (typeof cnCtx === 'number' && typeof unetCtx === 'number' && cnCtx !== unetCtx) {
    throw new ModelFolderError(`ControlNet ${c} does not fit ${m}: it takes text embeddings of width ${cnCtx}, the UNet's are ${unetCtx}${hint}`);
  }
  // SDXL: the added conditions must have the UNet's widths (pooled text embedding, number of time ids).
  for (const name of ['text_embeds', 'time_ids']) {
    if (!unet.has(name) || !cn.has(name)) continue;
    const a = cn.input(name).shape[1];
    const b = unet.input(name).shape[1];
    if (typeof a === 'number' && typeof b === 'number' && a !== b) {
      throw new ModelFolderError(`ControlNet ${c} does not fit ${m}: its "${name}" has width ${a}, the UNet's ${b}${hint}`);
    }
  }
  for (const [out, spec] of cn.outputs) {
    const target = residualTarget(out);
    if (!unet.has(target)) {
      throw new ModelFolderError(`ControlNet ${c} does not fit ${m}: it outputs "${out}" but the UNet has no input "${target}" (its residual inputs: ${inputs.join(', ')})${hint}`);
    }
    const a = spec.shape[1];
    const b = unet.input(target).shape[1];
    if (typeof a === 'number' && typeof b === 'number' && a !== b) {
      throw new ModelFolderError(`ControlNet ${c} does not fit ${m}: its "${out}" has ${a} channels, the UNet's "${target}" takes ${b}${hint}`);
    }
  }
  const produced = new Set([...cn.outputs.keys()].map(residualTarget));
  const missing = inputs.filter((n) => !produced.has(n));
  if (missing.length > 0) {
    throw new ModelFolderError(`ControlNet ${c} does not fit ${m}: the UNet needs the residual${missing.length > 1 ? 's' : ''} ${missing.map((n) => `"${n}"`).join(', ')}, which it does not output${hint}`);
  }
}

/**
 * Whether a ControlNet's config.json sets `global_pool_conditions` (e.g. the shuffle ControlNet): its residuals are
 * spatial means, which diffusers computes inside ControlNetModel, so an export carries it; the pipelines read it to
 * force guess mode. Read once per graph file (config.json next to model.onnx); no config means false.
 */
const poolConditions = new Map<string, boolean>();
function globalPoolConditions(graph: ModelGraph): boolean {
  let v = poolConditions.get(graph.path);
  if (v === undefined) {
    const path = join(dirname(graph.path), 'config.json');
    let config: unknown = null;
    try {
      config = existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : null;
    } catch (e) {
      throw new ModelFolderError(`${path}: not valid JSON (${(e as Error).message})`);
    }
    v = typeof config === 'object' && config !== null && (config as Record<string, unknown>)['global_pool_conditions'] === true;
    poolConditions.set(graph.path, v);
  }
  return v;
}

/**
 * Guess mode for a list of ControlNets, with diffusers' rule (0.30.3 ControlNet pipelines): on when the job asks, and
 * forced on when the first ControlNet pools its conditions. `pooled[k]`: net k pools, so ControlNetModel leaves its
 * residuals at the plain scale instead of the guess-mode ramp.
 */
export function controlGuessMode(controls: readonly { graph: ModelGraph }[], requested: boolean): { on: boolean; pooled: boolean[] } {
  const pooled = controls.map((c) => globalPoolConditions(c.graph));
  return { on: requested || pooled[0] === true, pooled };
}

/**
 * Guess mode's per-residual scales (ControlNetModel, guess_mode without pooling): residual k of the K down residuals
 * gets logspace(-1, 0, K + 1)[k] × scale, the mid residual the last (1 × scale), all in float32 as torch does.
 */
export function guessModeScales(outputs: readonly string[], scale: number): Map<string, number> {
  const down = outputs.map((o) => /^down_block_(\d+)$/.exec(o)).filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ name: m[0], index: Number(m[1]) })).sort((a, b) => a.index - b.index);
  const steps = down.length + 1;
  // torch.logspace on CPU: base^(start + step·k) in double for the first half, base^(end − step·(steps−1−k)) after.
  const step = 1 / (steps - 1);
  const ramp = Array.from({ length: steps }, (_, k) => Math.fround(10 ** (k < Math.floor(steps / 2) ? -1 + step * k : -(step * (steps - 1 - k)))));
  const s = Math.fround(scale);
  const scales = new Map<string, number>();
  down.forEach((d, k) => scales.set(d.name, Math.fround(ramp[k]! * s)));
  for (const o of outputs) if (residualTarget(o) === 'mid_block_additional_residual') scales.set(o, Math.fround(ramp[steps - 1]! * s));
  return scales;
}
