/**
 * What the VP-form (variance-preserving, x_t = alpha_t x0 + sigma_t eps) samplers share: config resolution against a
 * diffusers class's __init__ defaults, the training alphas_cumprod (with diffusers' zero-terminal-SNR rescale),
 * the prediction-type algebra, add_noise, and the element loops every step runs over the latents.
 *
 * Scheduler scalars are float64; tensors stay float32 and are written once per step (see scheduler.ts).
 */
import { betas, roundHalfEven, spacedTimesteps } from '../noise-schedule.js';
import { rescaleZeroTerminalSnr, torchCumprodF32 } from '../sigmas.js';
import type { SchedulerConfig } from '../scheduler.js';
import { linearCombinationInto, MAX_TERMS, x0UpdateInto } from '../../simd/latent-kernels.js';

/** The class defaults overlaid with the caller's config, as diffusers' `from_config` resolves it. */
export function resolveConfig<D extends object>(defaults: D, config: Partial<SchedulerConfig>): D & SchedulerConfig {
  const out: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
  for (const [key, value] of Object.entries(config)) if (value !== undefined) out[key] = value;
  return out as D & SchedulerConfig;
}

/** A float config value that JSON cannot spell (diffusers writes -inf for lambda_min_clipped). */
export function configFloat(value: unknown, name: string): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') {
    const s = value.trim().toLowerCase();
    if (s === '-inf' || s === '-infinity') return -Infinity;
    if (s === 'inf' || s === 'infinity' || s === '+inf') return Infinity;
    const n = Number(s);
    if (s !== '' && Number.isFinite(n)) return n;
  }
  throw new Error(`scheduler config ${name} must be a number, got ${String(value)}`);
}

/**
 * Rejects options whose diffusers semantics need the batch shape (dynamic thresholding works per image) or a
 * learned variance channel: the flat-latent interface cannot honour them, and silently ignoring them would not match.
 */
export function rejectUnsupported(config: Record<string, unknown>, className: string): void {
  if (config.thresholding === true) throw new Error(`${className}: thresholding is not supported`);
  const vt = config.variance_type;
  if (vt === 'learned' || vt === 'learned_range') throw new Error(`${className}: variance_type ${vt} is not supported`);
}

/**
 * The training alphas_cumprod of a VP scheduler (torch's double-accumulated cumprod). `rescale_betas_zero_snr`
 * rescales the betas first; classes that step on sigmas (DPM-Solver, UniPC) then pin the last value to 2^-24
 * (`pinZeroSnr`) so that sigma stays finite, the others keep the exact 0.
 */
export function trainingAlphasCumprod(config: SchedulerConfig, pinZeroSnr = false): Float32Array {
  const zeroSnr = config.rescale_betas_zero_snr === true;
  const b = zeroSnr ? rescaleZeroTerminalSnr(betas(config)) : betas(config);
  const acp = torchCumprodF32(b.map((x) => Math.fround(1 - x)));
  if (zeroSnr && pinZeroSnr) acp[acp.length - 1] = 2 ** -24;
  return acp;
}

/**
 * The integer timesteps of DDIM / DDPM / PNDM / LCM-style schedulers ("linspace" is rounded half to even, as
 * numpy's round), descending.
 */
export function integerTimesteps(config: SchedulerConfig, n: number): number[] {
  if (n > config.num_train_timesteps) {
    throw new Error(`num_inference_steps ${n} exceeds num_train_timesteps ${config.num_train_timesteps}`);
  }
  return spacedTimesteps(config, n).map(roundHalfEven);
}

/**
 * Coefficients that turn (sample, model output) into the predicted x0 and epsilon at a noise level with
 * x_t = alpha x0 + sigma eps: x0 = x0S*sample + x0M*out, eps = epsS*sample + epsM*out.
 */
export interface PredictionCoefficients {
  x0S: number;
  x0M: number;
  epsS: number;
  epsM: number;
}

export function predictionCoefficients(predictionType: unknown, alpha: number, sigma: number): PredictionCoefficients {
  switch (predictionType) {
    case 'epsilon':
      return { x0S: 1 / alpha, x0M: -sigma / alpha, epsS: 0, epsM: 1 };
    case 'v_prediction':
      return { x0S: alpha, x0M: -sigma, epsS: sigma, epsM: alpha };
    case 'sample':
      return { x0S: 0, x0M: 1, epsS: 1 / sigma, epsM: -alpha / sigma };
    default:
      throw new Error(`unsupported prediction_type ${String(predictionType)}`);
  }
}

/** add_noise of the alphas_cumprod schedulers: sqrt(acp) * x0 + sqrt(1 - acp) * noise. */
export function addNoiseAlphaCumprod(original: Float32Array, noise: Float32Array, acp: number): Float32Array {
  return new LinearCombiner().add(Math.sqrt(acp), original).add(Math.sqrt(1 - acp), noise).into(
    new Float32Array(original.length),
  );
}

/**
 * The x0-predicting update of DDIM, DDPM and LCM, one pass over the latents:
 * out = p * clip(x0S*s + x0M*m) + q*s + r*m + e*noise, where clip is the optional clip_sample clamp.
 */
export interface X0Update {
  x0S: number;
  x0M: number;
  /** clip_sample_range, or null when clip_sample is off. */
  clip: number | null;
  p: number;
  q: number;
  r: number;
  e: number;
}

export function applyX0Update(
  u: X0Update,
  sample: Float32Array,
  modelOutput: Float32Array,
  noise: Float32Array | null,
  out: Float32Array = new Float32Array(sample.length),
): Float32Array {
  const { x0S, x0M, clip, p, q, r, e } = u;
  const lo = clip === null ? -Infinity : -clip;
  const hi = clip === null ? Infinity : clip;
  return x0UpdateInto({ x0S, x0M, lo, hi, p, q, r, e }, sample, modelOutput, noise, out);
}

export function checkLength(a: Float32Array, n: number): void {
  if (a.length !== n) throw new Error(`tensor length ${a.length} does not match the latents (${n})`);
}

/**
 * out = sum of coef_k * buf_k over the latents, one pass, with at most 8 terms. Reused across steps so that a
 * step allocates nothing but its output: `lc.reset().add(a, x).add(b, y).into(out)`.
 */
export class LinearCombiner {
  private readonly coef = new Float64Array(8);
  private readonly bufs: Float32Array[] = [];
  private count = 0;

  reset(): this {
    this.count = 0;
    return this;
  }

  add(coef: number, buf: Float32Array): this {
    if (this.count === 8) throw new Error('LinearCombiner: more than 8 terms');
    this.coef[this.count] = coef;
    this.bufs[this.count] = buf;
    this.count++;
    return this;
  }

  into(out: Float32Array): Float32Array {
    const n = out.length;
    for (let k = 0; k < this.count; k++) checkLength(this.bufs[k]!, n);
    // up to MAX_TERMS terms (every sampler but high-order UniPC): one SIMD pass, summed as written left to right
    if (this.count >= 1 && this.count <= MAX_TERMS) return linearCombinationInto(this.coef, this.bufs, this.count, out);
    // longer sums: accumulate in float64, store once
    const acc = this.scratch(n);
    acc.fill(0);
    for (let k = 0; k < this.count; k++) {
      const ck = this.coef[k]!;
      const bk = this.bufs[k]!;
      for (let i = 0; i < n; i++) acc[i] = acc[i]! + ck * bk[i]!;
    }
    out.set(acc);
    return out;
  }

  private acc: Float64Array | null = null;

  private scratch(n: number): Float64Array {
    if (!this.acc || this.acc.length !== n) this.acc = new Float64Array(n);
    return this.acc;
  }
}
