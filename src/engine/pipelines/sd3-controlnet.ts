/**
 * SD3 ControlNet as diffusers' StableDiffusion3ControlNetPipeline + SD3ControlNetModel (0.30.3) run it, on the export
 * convention of scripts/fixtures/README.md (tiny-sd3-controlnet):
 *
 *   controlnet/model.onnx: hidden_states, controlnet_cond (scaled VAE latents of the control image),
 *     encoder_hidden_states, pooled_projections, timestep, conditioning_scale → controlnet_block_samples.{k}
 *   transformer/model.onnx: + block_controlnet_hidden_states.{i}, added to joint block i's image tokens (zeros = none)
 *
 * Residual k goes to block i with k = i // (num_layers // K), diffusers' interval rule; the context_pre_only last block
 * takes none.
 */
import type { ModelGraph } from '../onnx/session.js';
import { ModelFolderError } from '../onnx/session.js';
import { num, type ModelInfo } from '../model-folder.js';
import type { TorchGenerator } from '../sampling/torch-rng.js';
import { sliceBatch, type Tensor } from '../tensor.js';
import { timestepFeed, vaeEncodeSample } from './steps.js';

export const RESIDUAL_INPUT = 'block_controlnet_hidden_states.';
export const CONTROL_OUTPUT = 'controlnet_block_samples.';
const CONTROLNET_INPUTS = ['hidden_states', 'controlnet_cond', 'encoder_hidden_states', 'pooled_projections', 'timestep', 'conditioning_scale'];

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

export interface Sd3ControlLayout {
  /** The transformer's residual inputs and which ControlNet output each one takes (null: no ControlNet). */
  feeds: { input: string; output: string | null }[];
  /** Width of a residual token ([B, N, inner]). */
  inner: number;
  patch: number;
}

/**
 * How a folder's transformer and (optional) ControlNet connect; null when the transformer has no residual inputs and
 * there is no ControlNet. Throws ModelFolderError when they cannot work together, so a broken folder fails at load.
 */
export function sd3ControlLayout(info: ModelInfo, transformer: ModelGraph, controlnet: ModelGraph | null): Sd3ControlLayout | null {
  const inputs = numbered(transformer.inputs.keys(), RESIDUAL_INPUT);
  if (!controlnet && inputs.length === 0) return null;
  const cfg = info.unetConfig;
  const spec = inputs[0] ? transformer.input(inputs[0].name) : null;
  const inner = typeof spec?.shape[2] === 'number' ? spec.shape[2] : num(cfg, 'num_attention_heads', 0) * num(cfg, 'attention_head_dim', 0);
  const patch = num(cfg, 'patch_size', 2);
  if (!controlnet) return { feeds: inputs.map((i) => ({ input: i.name, output: null })), inner, patch };

  for (const n of CONTROLNET_INPUTS) controlnet.input(n);
  const outputs = numbered(controlnet.outputs.keys(), CONTROL_OUTPUT);
  if (outputs.length === 0 || outputs.some((o, k) => o.index !== k)) {
    throw new ModelFolderError(`${controlnet.path}: expected outputs ${CONTROL_OUTPUT}0 … ${CONTROL_OUTPUT}K-1, found ${[...controlnet.outputs.keys()].join(', ')}`);
  }
  if (inputs.length === 0) {
    throw new ModelFolderError(`${transformer.path}: this folder has a controlnet/ but the transformer has no "${RESIDUAL_INPUT}N" inputs; export the transformer with one ControlNet residual input per joint block (scripts/fixtures/README.md) or remove controlnet/`);
  }
  const layers = num(cfg, 'num_layers', inputs.length + 1);
  const interval = Math.floor(layers / outputs.length);
  if (interval < 1) throw new ModelFolderError(`${controlnet.path}: ${outputs.length} ControlNet blocks for a ${layers}-block transformer`);
  const feeds: { input: string; output: string }[] = [];
  for (const { name, index } of inputs) {
    const k = Math.floor(index / interval);
    // diffusers indexes past the ControlNet's outputs here and fails too.
    if (k >= outputs.length) throw new ModelFolderError(`${controlnet.path}: ${outputs.length} ControlNet blocks cannot feed transformer block ${index} of ${layers} (interval ${interval})`);
    feeds.push({ input: name, output: outputs[k]!.name });
  }
  return { feeds, inner, patch };
}

/**
 * The control image's latents as diffusers 0.30.3 makes them: [0, 1] → [-1, 1], VAE-encoded (diffusers encodes the
 * image repeated to the model batch, CFG included; one encoding sampled `rows` times is the same) and sampled with ONE
 * draw of torch's global RNG for all rows, × scaling_factor (0.30.3 applies no shift here).
 * That global RNG is reproduced as a generator seeded with the job seed (torch.manual_seed(seed) before the call).
 */
export async function controlLatents(vae: ModelGraph, unitImage: Tensor, rows: number, generator: TorchGenerator, scalingFactor: number): Promise<Tensor> {
  const f32 = Math.fround;
  const image = { data: unitImage.data.map((v) => f32(f32(2 * v) - 1)), dims: unitImage.dims };
  return vaeEncodeSample(vae, image, generator, scalingFactor, null, rows);
}

/** The per-step transformer feeds: ControlNet residuals for this step, or zeros when it has no effect. */
export function controlFeeds(
  layout: Sd3ControlLayout, controlnet: ModelGraph | null,
  control: { latents: Tensor; scale: number; start: number; end: number } | null,
  text: { hidden: Tensor; pooledDims: readonly number[] }, latentHw: readonly [number, number],
) {
  let zeros: Tensor | null = null;
  const tokens = (latentHw[0] / layout.patch) * (latentHw[1] / layout.patch);
  const zeroFeeds = (rows: number) => {
    if (!zeros || zeros.dims[0]! < rows) zeros = { data: new Float32Array(rows * tokens * layout.inner), dims: [rows, tokens, layout.inner] };
    const z = sliceBatch(zeros, 0, rows);
    return (start: number, count: number) => Object.fromEntries(layout.feeds.map((f) => [f.input, sliceBatch(z, start, count)]));
  };
  const pooledZeros = { data: new Float32Array(text.pooledDims[0]! * text.pooledDims[1]!), dims: text.pooledDims };
  return {
    /** Feeds for a run without control (e.g. the skip-layer pass), `rows` rows. */
    none: (rows: number) => zeroFeeds(rows),
    /** Runs the ControlNet for step i of `total` on the model batch, as the pipeline's controlnet_keep rule says. */
    async step(input: Tensor, t: number, i: number, total: number): Promise<(start: number, count: number) => Record<string, Tensor>> {
      const rows = input.dims[0]!;
      const keep = control && !(i / total < control.start || (i + 1) / total > control.end) ? 1 : 0;
      const scale = control ? control.scale * keep : 0;
      // Residuals × 0 add nothing, so a step outside [start, end] skips the ControlNet run (diffusers runs it).
      if (!control || !controlnet || scale === 0) return zeroFeeds(rows);
      const out = await controlnet.run({
        hidden_states: input, controlnet_cond: control.latents, encoder_hidden_states: text.hidden,
        pooled_projections: pooledZeros, timestep: timestepFeed(controlnet, t, rows),
        conditioning_scale: { data: Float32Array.of(scale), dims: [] },
      });
      const residual = (name: string): Tensor => {
        const r = out[name];
        if (!r) throw new Error(`${controlnet.path}: no "${name}" output`);
        return { data: r.data, dims: r.dims };
      };
      return (start, count) => Object.fromEntries(layout.feeds.map((f) => [f.input, sliceBatch(residual(f.output!), start, count)]));
    },
  };
}
