/**
 * Sigma schedules of the k-diffusion family as diffusers 0.30.3 builds them (Euler, Euler a, Heun, DPM2, DPM2 a,
 * LMS): the training sigmas, the inference timesteps, their sigmas by linear interpolation, Karras' schedule and the
 * sigma → timestep inverse, plus the scheduler base these classes share (step index, c_in scaling, add_noise).
 *
 * diffusers computes these with numpy in float64 and stores them as float32 torch tensors; here the arithmetic runs in
 * float64 and every stored value is rounded to float32 (`Math.fround`) where diffusers stores a float32.
 */
import { betas as scheduleBetas, spacedTimesteps, roundHalfEven, numpyArange, torchCumprodF32 } from './noise-schedule.js';

// Re-exported for the samplers that import them from here; they live with the other torch/numpy-exact primitives.
export { numpyArange, torchCumprodF32 };
import type { NoiseSampler, Scheduler, SchedulerConfig } from './scheduler.js';
import { RotatingBuffers } from './scheduler.js';
import { StepIndex } from './samplers/step-index.js';
import { latentBuffer, linearCombinationInto } from '../simd/latent-kernels.js';

const f32 = Math.fround;

// ─── config access ──────────────────────────────────────────────────────────────────────────────────────────────

/** A numeric config value as diffusers reads `self.config.<key>`; null when the key is absent or None. */
export function configNumber(config: SchedulerConfig, key: string): number | null {
  const v = config[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number') throw new Error(`scheduler config ${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

export function configFlag(config: SchedulerConfig, key: string): boolean {
  return config[key] === true;
}

export function configString(config: SchedulerConfig, key: string, fallback: string): string {
  const v = config[key];
  return typeof v === 'string' ? v : fallback;
}

// ─── training schedule ──────────────────────────────────────────────────────────────────────────────────────────

/** diffusers' rescale_zero_terminal_snr (arXiv 2305.08891, Algorithm 1), float32 like its torch original. */
export function rescaleZeroTerminalSnr(betas: Float32Array): Float32Array {
  const n = betas.length;
  const acp = torchCumprodF32(betas.map((b) => f32(1 - b)));
  const sqrtAcp = acp.map((a) => f32(Math.sqrt(a)));
  const first = sqrtAcp[0]!;
  const last = sqrtAcp[n - 1]!;
  const scale = f32(first / f32(first - last));
  const alphaBar = sqrtAcp.map((v) => {
    const shifted = f32(f32(v - last) * scale);
    return f32(shifted * shifted);
  });
  const out = new Float32Array(n);
  out[0] = f32(1 - alphaBar[0]!);
  for (let i = 1; i < n; i++) out[i] = f32(1 - f32(alphaBar[i]! / alphaBar[i - 1]!));
  return out;
}

/** betas_for_alpha_bar with alpha_transform_type "exp" (HeunDiscreteScheduler's beta_schedule "exp"). */
function expBetas(n: number): Float32Array {
  const alphaBar = (t: number): number => Math.exp(t * -12.0);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999);
  return out;
}

export interface TrainingSigmas {
  alphasCumprod: Float32Array;
  /** ((1 - acp) / acp) ** 0.5 in float32, indexed by training timestep (ascending). */
  sigmas: Float32Array;
  /** np.log of the float32 sigmas: float32 values, held as doubles. */
  logSigmas: Float64Array;
}

export interface TrainingOptions {
  /** The class accepts `rescale_betas_zero_snr` (Euler, Euler a). */
  zeroSnr?: boolean;
  /** The class accepts beta_schedule "exp" (Heun). */
  expSchedule?: boolean;
}

/** The training sigmas a sigma scheduler's __init__ derives from betas (trained_betas, beta_schedule, zero SNR). */
export function trainingSigmas(config: SchedulerConfig, opts: TrainingOptions = {}): TrainingSigmas {
  const schedule: string = config.beta_schedule;
  let betas: Float32Array;
  if (config.trained_betas) betas = Float32Array.from(config.trained_betas);
  else if (schedule === 'exp' && opts.expSchedule) betas = expBetas(config.num_train_timesteps);
  else if (schedule === 'linear' || schedule === 'scaled_linear' || schedule === 'squaredcos_cap_v2') betas = scheduleBetas(config);
  else throw new Error(`beta_schedule "${schedule}" is not implemented for this scheduler`);
  const zeroSnr = opts.zeroSnr === true && configFlag(config, 'rescale_betas_zero_snr');
  if (zeroSnr) betas = rescaleZeroTerminalSnr(betas);
  const alphasCumprod = torchCumprodF32(betas.map((b) => f32(1 - b)));
  // zero SNR makes the last alpha_bar 0; diffusers nudges it to 2^-24 so the first sigma stays finite
  if (zeroSnr) alphasCumprod[alphasCumprod.length - 1] = 2 ** -24;
  const sigmas = alphasCumprod.map((a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
  const logSigmas = Float64Array.from(sigmas, (s) => f32(Math.log(s)));
  return { alphasCumprod, sigmas, logSigmas };
}

// ─── inference timesteps and sigmas ─────────────────────────────────────────────────────────────────────────────

/**
 * The descending timesteps of the sigma schedulers' set_timesteps, float32 values: "linspace" (fractional),
 * "leading" (+ steps_offset) or "trailing" (- 1).
 */
export function sigmaSchedulerTimesteps(config: SchedulerConfig, n: number): number[] {
  if (!Number.isInteger(n) || n < 1) throw new Error(`num_inference_steps must be a positive integer, got ${n}`);
  const T = config.num_train_timesteps;
  switch (config.timestep_spacing) {
    case 'linspace':
    case 'leading':
      return spacedTimesteps(config, n).map(f32);
    case 'trailing':
      return numpyArange(T, 0, -T / n).map((t) => f32(roundHalfEven(t) - 1));
    default:
      throw new Error(
        `${String(config.timestep_spacing)} is not supported. Please make sure to choose one of 'linspace', 'leading' or 'trailing'.`,
      );
  }
}

/** np.interp(x, arange(len(fp)), fp) in float64, clamped at both ends like numpy. */
export function interpAtTimesteps(timesteps: readonly number[], fp: Float32Array): number[] {
  const last = fp.length - 1;
  return timesteps.map((x) => {
    if (Number.isNaN(x)) return NaN;
    if (x <= 0) return fp[0]!;
    if (x >= last) return fp[last]!;
    const j = Math.floor(x);
    if (j === x) return fp[j]!;
    const slope = fp[j + 1]! - fp[j]!;
    return slope * (x - j) + fp[j]!;
  });
}

/** np.linspace(0, 1, n) the numpy way: i * step, with the last element exactly 1. */
function unitRamp(n: number): number[] {
  if (n === 1) return [0];
  const step = 1 / (n - 1);
  const ramp = Array.from({ length: n }, (_, i) => i * step);
  ramp[n - 1] = 1;
  return ramp;
}

/** Karras et al. (2022) eq. 5 with rho 7, float64, as diffusers' `_convert_to_karras` (k-diffusion get_sigmas_karras). */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number, rho = 7.0): number[] {
  const minInvRho = sigmaMin ** (1 / rho);
  const maxInvRho = sigmaMax ** (1 / rho);
  return unitRamp(n).map((r) => (maxInvRho + r * (minInvRho - maxInvRho)) ** rho);
}

/**
 * The Karras bounds: `config.sigma_min` / `config.sigma_max` when the config carries them (diffusers reads them
 * with hasattr, so a key inherited from another class's config counts), else the ends of the interpolated sigmas.
 */
export function karrasBounds(config: SchedulerConfig | null, inSigmas: readonly number[]): [number, number] {
  const min = config ? configNumber(config, 'sigma_min') : null;
  const max = config ? configNumber(config, 'sigma_max') : null;
  return [min ?? inSigmas[inSigmas.length - 1]!, max ?? inSigmas[0]!];
}

/**
 * diffusers' `_sigma_to_t`: the (fractional) training timestep whose log-sigma matches, by linear interpolation
 * between the two bracketing training log-sigmas. The bracket search compares in float32 like numpy does when a
 * float64 scalar meets the float32 log-sigma array.
 */
export function sigmaToT(sigma: number, logSigmas: Float64Array): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  const probe = f32(logSigma);
  let low = 0;
  for (let i = 0; i < logSigmas.length; i++) if (probe >= logSigmas[i]!) low = i;
  low = Math.min(low, logSigmas.length - 2);
  const lo = logSigmas[low]!;
  const hi = logSigmas[low + 1]!;
  let w = (lo - logSigma) / (lo - hi);
  w = Math.min(Math.max(w, 0), 1);
  return (1 - w) * low + w * (low + 1);
}

/** Karras sigmas' timesteps as the DPM2 schedulers keep them: `_sigma_to_t` rounded half to even. */
export function roundedSigmaTimesteps(sigmas: readonly number[], logSigmas: Float64Array): number[] {
  return sigmas.map((s) => roundHalfEven(sigmaToT(s, logSigmas)));
}

/**
 * `a.log().lerp(b.log(), 0.5).exp()` in float32 torch ops: the geometric mean of a and b, 0 when a is 0, and NaN
 * when only b is 0 (torch's lerp takes `end - (end - start) * 0.5` at weight 0.5, which is -inf + inf there).
 */
export function torchLogLerpHalf(a: number, b: number): number {
  const start = f32(Math.log(a));
  const end = f32(Math.log(b));
  return f32(Math.exp(f32(end - f32(f32(end - start) * 0.5))));
}

/** Per-step k-diffusion denoiser coefficients: x0 = a * sample + b * model_output for sigma. */
export function denoiserCoefficients(predictionType: string, sigma: number): [number, number] {
  switch (predictionType) {
    case 'epsilon':
      return [1, -sigma];
    case 'v_prediction':
      return [1 / (sigma * sigma + 1), -sigma / Math.sqrt(sigma * sigma + 1)];
    case 'sample':
      return [0, 1];
    default:
      throw new Error(`prediction_type given as ${predictionType} must be one of \`epsilon\`, or \`v_prediction\``);
  }
}

/** sigma_up / sigma_down of an ancestral step from sigma to sigmaNext with eta 1 (k-diffusion get_ancestral_step). */
export function ancestralSplit(sigma: number, sigmaNext: number): { up: number; down: number } {
  // float32 op by op, as diffusers' torch tensors compute it: sigma_next² − up² cancels all but a few bits when
  // sigma ≫ sigma_next (DPM2 a's first step from a large sigma_max), and the result moves the midpoint timestep
  // (e.g. 0.0096 vs 5e-8 at sigma_min); double precision would be more exact but not diffusers.
  const s2 = f32(sigma * sigma);
  const n2 = f32(sigmaNext * sigmaNext);
  const up = f32(Math.sqrt(f32(f32(n2 * f32(s2 - n2)) / s2)));
  return { up, down: f32(Math.sqrt(f32(n2 - f32(up * up)))) };
}

/** The float32 `(sigma_max**2 + 1) ** 0.5` of "leading" spacing, or sigma_max for "linspace" / "trailing". */
export function initNoiseSigmaFor(config: SchedulerConfig, sigmas: readonly number[]): number {
  const max = sigmas.reduce((m, s) => (s > m ? s : m), -Infinity);
  if (config.timestep_spacing === 'linspace' || config.timestep_spacing === 'trailing') return max;
  return f32(Math.sqrt(f32(f32(max * max) + 1)));
}

/** torch.cat([x[:1], x[1:].repeat_interleave(2)]): the order-2 schedulers' repeat of every entry but the first. */
export function repeatAfterFirst(values: readonly number[]): number[] {
  const out = [values[0]!];
  for (let i = 1; i < values.length; i++) out.push(values[i]!, values[i]!);
  return out;
}

/** torch.cat([x[:1], x[1:].repeat_interleave(2), x[-1:]]): the per-call layout of the DPM2 schedulers' n+1 tables. */
export function dpm2Layout(values: readonly number[]): number[] {
  return [...repeatAfterFirst(values), values[values.length - 1]!];
}

// ─── shared scheduler state ─────────────────────────────────────────────────────────────────────────────────────

/**
 * What diffusers' sigma schedulers share: the step index (fixed on the first scale_model_input or step call, from
 * set_begin_index or else from the timestep's position, then one per step), c_in scaling and add_noise.
 */
export abstract class SigmaScheduler implements Scheduler {
    /** Step outputs rotate through three buffers instead of a fresh allocation per step. */
  protected readonly outputs = new RotatingBuffers();
  protected readonly scaled = new RotatingBuffers();
  abstract readonly timesteps: readonly number[];
  abstract readonly sigmas: readonly number[];
  abstract readonly initNoiseSigma: number;
  abstract readonly order: number;
  abstract readonly drawsNoise: boolean;
  readonly timestepsDtype = 'float32' as const;
  private tracker: StepIndex | null = null;

  /** Created on first use: subclasses set `timesteps` after super(). */
  private get index(): StepIndex {
    return (this.tracker ??= new StepIndex(this.timesteps, false));
  }

  setBeginIndex(index: number): void {
    this.index.setBegin(index);
  }

  /** index_for_timestep: t's position, the second one when t is repeated (order-2 schedules). */
  indexForTimestep(t: number): number {
    return this.index.indexFor(t);
  }

  /** The index of the step being taken; `advance()` after the step. */
  protected currentIndex(t: number): number {
    return this.index.stepIndex(t);
  }

  protected advance(): void {
    this.index.advance();
  }

  /** sample / sqrt(sigma^2 + 1): the k-diffusion c_in the schedulers apply before the model. */
  protected scaleBySigma(sample: Float32Array, sigma: number, out: Float32Array = this.scaled.next(sample.length)): Float32Array {
    const c = 1 / Math.sqrt(sigma * sigma + 1);
    return linearCombinationInto([c], [sample], 1, out);
  }

  abstract scaleModelInput(sample: Float32Array, t: number, out?: Float32Array): Float32Array;
  abstract step(modelOutput: Float32Array, t: number, sample: Float32Array, noise: NoiseSampler): Float32Array;

  /** original + noise * sigma at the img2img start (begin index), the current step (inpaint) or t's position. */
  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    const sigma = this.sigmas[this.index.noiseIndex(t)]!;
    const out = new Float32Array(original.length);
    for (let i = 0; i < original.length; i++) out[i] = original[i]! + noise[i]! * sigma;
    return out;
  }
}

/** A float32 work buffer reused across steps (order-2 and multistep state), grown only when the batch changes. */
export function reuseBuffer(buffer: Float32Array | null, length: number): Float32Array {
  return buffer !== null && buffer.length === length ? buffer : latentBuffer(length);
}
