/**
 * The machinery diffusers' multistep VP solvers share (DPMSolverMultistep, DPMSolverSinglestep, UniPCMultistep,
 * DEISMultistep): their n+1-point timestep spacing, the sigma schedule (interpolated, Karras, log-linear) with the
 * class's final sigma, the (alpha_t, sigma_t, lambda_t) of a sigma, the history of converted model outputs, and the
 * DPM-Solver / DPM-Solver++ update coefficients (Lu et al. 2022, arXiv 2206.00927 and 2211.01095).
 *
 * Every update is linear in the sample, the stored outputs and the noise, so a step computes a handful of float64
 * coefficients and makes one pass over the latents.
 */
import { roundHalfEven } from '../noise-schedule.js';
import { RotatingBuffers, type NoiseSampler, type Scheduler, type SchedulerConfig } from '../scheduler.js';
import type { StepIndex } from './step-index.js';
import {
  interpAtTimesteps,
  karrasBounds,
  karrasSigmas,
  numpyArange,
  sigmaToT,
  trainingSigmas,
  type TrainingSigmas,
} from '../sigmas.js';
import { configFloat, LinearCombiner } from './vp-common.js';
import { latentBuffer } from '../../simd/latent-kernels.js';

// ─── schedule ───────────────────────────────────────────────────────────────────────────────────────────────────

/**
 * The training schedule of a multistep solver. `zeroSnr`: the class accepts rescale_betas_zero_snr (DPM-Solver
 * multistep, UniPC), which pins the last alphas_cumprod to 2^-24.
 */
export function multistepTraining(config: SchedulerConfig, zeroSnr: boolean): TrainingSigmas {
  return trainingSigmas(config, { zeroSnr });
}

/**
 * searchsorted(flip(lambda_t), lambda_min_clipped): how many of the noisiest training steps lambda_min_clipped cuts
 * off the schedule (0 for the default -inf).
 */
export function clippedSteps(train: TrainingSigmas, lambdaMinClipped: unknown): number {
  const limit = configFloat(lambdaMinClipped ?? -Infinity, 'lambda_min_clipped');
  if (limit === -Infinity) return 0;
  let count = 0;
  for (const acp of train.alphasCumprod) {
    const lambda = Math.log(Math.fround(Math.sqrt(acp))) - Math.log(Math.fround(Math.sqrt(1 - acp)));
    if (lambda < limit) count++;
  }
  return count;
}

/**
 * The descending integer timesteps of the multistep solvers: n+1 points of the spacing with the last (t = 0 end)
 * dropped. `lastTimestep` is num_train_timesteps less the clipped steps.
 */
export function multistepTimesteps(config: SchedulerConfig, n: number, lastTimestep: number): number[] {
  if (!Number.isInteger(n) || n < 1) throw new Error(`num_inference_steps must be a positive integer, got ${n}`);
  const T = config.num_train_timesteps;
  switch (config.timestep_spacing) {
    case 'linspace': {
      // np.linspace(0, last - 1, n + 1): i * step, the end exact
      const step = (lastTimestep - 1) / n;
      const points = Array.from({ length: n + 1 }, (_, i) => (i === n ? lastTimestep - 1 : i * step));
      return points.map(roundHalfEven).reverse().slice(0, n);
    }
    case 'leading': {
      const ratio = Math.floor(lastTimestep / (n + 1));
      const points = Array.from({ length: n + 1 }, (_, i) => i * ratio + config.steps_offset);
      return points.reverse().slice(0, n);
    }
    case 'trailing':
      return numpyArange(lastTimestep, 0, -T / n).map((t) => roundHalfEven(t) - 1);
    default:
      throw new Error(
        `${String(config.timestep_spacing)} is not supported. Please make sure to choose one of 'linspace', 'leading' or 'trailing'.`,
      );
  }
}

/** How the schedule's sigmas were made: read off the training sigmas, or built (Karras / log-linear). */
export type SigmaSource = 'interpolated' | 'converted';

export interface MultistepSchedule {
  timesteps: number[];
  /** One sigma per timestep (float32 values), without the final one. */
  sigmas: number[];
  source: SigmaSource;
}

/**
 * The sigmas for the timesteps: interpolated from the training sigmas, or a built schedule whose timesteps are read
 * back with sigma_to_t and rounded to integers: use_karras_sigmas, else `logLinear` (DPM-Solver multistep's
 * use_lu_lambdas: uniform in lambda between the training extremes).
 */
export function multistepSchedule(
  config: SchedulerConfig,
  train: TrainingSigmas,
  timesteps: number[],
  n: number,
  logLinear: boolean,
): MultistepSchedule {
  let built: number[] | null = null;
  if (config.use_karras_sigmas === true) {
    const descending = Array.from(train.sigmas).reverse();
    const [min, max] = karrasBounds(config, descending);
    built = karrasSigmas(min, max, n);
  } else if (logLinear) {
    // uniform in lambda = -log(sigma) between the training extremes (diffusers' _convert_to_lu with rho 1)
    const lambdaMin = train.logSigmas[0]!;
    const lambdaMax = train.logSigmas[train.logSigmas.length - 1]!;
    built = unitRamp(n).map((r) => Math.exp(lambdaMax + r * (lambdaMin - lambdaMax)));
  }
  if (built === null) {
    return { timesteps, sigmas: interpAtTimesteps(timesteps, train.sigmas).map(Math.fround), source: 'interpolated' };
  }
  return {
    timesteps: built.map((s) => roundHalfEven(sigmaToT(s, train.logSigmas))),
    sigmas: built.map(Math.fround),
    source: 'converted',
  };
}

/** np.linspace(0, 1, n): i * step, the last exactly 1. */
function unitRamp(n: number): number[] {
  if (n === 1) return [0];
  const step = 1 / (n - 1);
  return Array.from({ length: n }, (_, i) => (i === n - 1 ? 1 : i * step));
}

// ─── noise levels ───────────────────────────────────────────────────────────────────────────────────────────────

/** The VP quantities of a sigma: alpha_t = 1/sqrt(sigma^2+1), sigma_t = sigma alpha_t, lambda_t = log(alpha_t/sigma_t). */
export interface NoiseLevel {
  alpha: number;
  sigma: number;
  lambda: number;
}

export function noiseLevel(sigma: number): NoiseLevel {
  const alpha = 1 / Math.sqrt(sigma * sigma + 1);
  const sigmaT = sigma * alpha;
  return { alpha, sigma: sigmaT, lambda: Math.log(alpha) - Math.log(sigmaT) };
}

/** add_noise of the sigma-indexed VP solvers: alpha_t x0 + sigma_t noise at the schedule's sigma. */
export function addNoiseAtSigma(original: Float32Array, noise: Float32Array, sigma: number): Float32Array {
  const { alpha, sigma: sigmaT } = noiseLevel(sigma);
  return new LinearCombiner().add(alpha, original).add(sigmaT, noise).into(new Float32Array(original.length));
}

// ─── history of converted model outputs ─────────────────────────────────────────────────────────────────────────

/**
 * diffusers' `model_outputs` list: the last `size` converted model outputs, newest last, None until filled.
 * `next()` hands out the buffer the new output is written into (recycled from the entry about to drop out, so a
 * step allocates nothing); `commit()` then shifts it in. Between the two the old entries are intact (UniPC's
 * corrector reads them next to the new output).
 */
export class OutputHistory {
  private readonly entries: (Float32Array | null)[];
  private spare: Float32Array | null = null;

  constructor(readonly size: number) {
    this.entries = new Array<Float32Array | null>(size).fill(null);
  }

  next(length: number): Float32Array {
    if (this.spare === null || this.spare.length !== length) this.spare = latentBuffer(length);
    return this.spare;
  }

  commit(): void {
    if (this.spare === null) throw new Error('OutputHistory.commit() without next()');
    const dropped = this.entries[0] ?? null;
    for (let i = 0; i < this.size - 1; i++) this.entries[i] = this.entries[i + 1]!;
    this.entries[this.size - 1] = this.spare;
    this.spare = dropped;
  }

  /** model_outputs[-k]: k = 1 is the newest committed output; null where diffusers holds None. */
  back(k: number): Float32Array | null {
    return this.entries[this.size - k] ?? null;
  }

  /** model_outputs[-k], which the caller knows is filled. */
  at(k: number): Float32Array {
    const e = this.back(k);
    if (e === null) throw new Error(`model output -${k} is not available yet`);
    return e;
  }
}

// ─── DPM-Solver updates ─────────────────────────────────────────────────────────────────────────────────────────

export type DpmAlgorithm = 'dpmsolver++' | 'sde-dpmsolver++' | 'dpmsolver' | 'sde-dpmsolver';
export type DpmSolverType = 'midpoint' | 'heun';

/**
 * One DPM-Solver update from noise level s to t in the form x_t = A x_s + k0 D0 + k1 D1 + k2 D2 + kN noise, where
 * D0 is the (x0 or epsilon) model output and D1, D2 its first and second divided differences as each caller defines
 * them. Order 1 uses k0 only; order 2 adds k1 with the midpoint or Heun weight; order 3 (ODE algorithms only) k1, k2.
 */
export interface DpmUpdate {
  A: number;
  k0: number;
  k1: number;
  k2: number;
  kN: number;
}

export function dpmUpdate(
  algorithm: DpmAlgorithm,
  solverType: DpmSolverType,
  order: 1 | 2 | 3,
  s: NoiseLevel,
  t: NoiseLevel,
): DpmUpdate {
  const h = t.lambda - s.lambda;
  const u: DpmUpdate = { A: 0, k0: 0, k1: 0, k2: 0, kN: 0 };
  switch (algorithm) {
    case 'dpmsolver++': {
      const phi = Math.exp(-h) - 1;
      u.A = t.sigma / s.sigma;
      u.k0 = -t.alpha * phi;
      if (order === 2) u.k1 = solverType === 'midpoint' ? -0.5 * t.alpha * phi : t.alpha * (phi / h + 1);
      if (order === 3) {
        u.k1 = t.alpha * (phi / h + 1);
        u.k2 = -t.alpha * ((phi + h) / (h * h) - 0.5);
      }
      return u;
    }
    case 'dpmsolver': {
      const phi = Math.exp(h) - 1;
      u.A = t.alpha / s.alpha;
      u.k0 = -t.sigma * phi;
      if (order === 2) u.k1 = solverType === 'midpoint' ? -0.5 * t.sigma * phi : -t.sigma * (phi / h - 1);
      if (order === 3) {
        u.k1 = -t.sigma * (phi / h - 1);
        u.k2 = -t.sigma * ((phi - h) / (h * h) - 0.5);
      }
      return u;
    }
    case 'sde-dpmsolver++': {
      if (order === 3) throw new Error('sde-dpmsolver++ has no third-order update');
      const decay = 1 - Math.exp(-2 * h);
      u.A = (t.sigma / s.sigma) * Math.exp(-h);
      u.k0 = t.alpha * decay;
      if (order === 2) u.k1 = solverType === 'midpoint' ? 0.5 * t.alpha * decay : t.alpha * (decay / (-2 * h) + 1);
      u.kN = t.sigma * Math.sqrt(decay);
      return u;
    }
    case 'sde-dpmsolver': {
      if (order === 3) throw new Error('sde-dpmsolver has no third-order update');
      const phi = Math.exp(h) - 1;
      u.A = t.alpha / s.alpha;
      u.k0 = -2 * t.sigma * phi;
      if (order === 2) u.k1 = solverType === 'midpoint' ? -t.sigma * phi : -2 * t.sigma * (phi / h - 1);
      u.kN = t.sigma * Math.sqrt(Math.exp(2 * h) - 1);
      return u;
    }
  }
}

/** Validates algorithm_type / solver_type the way the DPM-Solver classes' __init__ does (with its silent remaps). */
export function dpmAlgorithm(config: SchedulerConfig, allowed: readonly DpmAlgorithm[], className: string): DpmAlgorithm {
  const alg = config.algorithm_type === 'deis' ? 'dpmsolver++' : config.algorithm_type;
  if (typeof alg !== 'string' || !(allowed as readonly string[]).includes(alg)) {
    throw new Error(`${className}: algorithm_type ${String(config.algorithm_type)} is not implemented`);
  }
  // the check reads the configured name, so "deis" (remapped to dpmsolver++) still needs sigma_min
  const named = config.algorithm_type;
  if (named !== 'dpmsolver++' && named !== 'sde-dpmsolver++' && config.final_sigmas_type === 'zero') {
    throw new Error(`${className}: final_sigmas_type zero is not supported for algorithm_type ${named}; choose sigma_min`);
  }
  return alg as DpmAlgorithm;
}

export function dpmSolverType(config: SchedulerConfig, className: string): DpmSolverType {
  const st = config.solver_type;
  if (st === 'midpoint' || st === 'heun') return st;
  if (st === 'logrho' || st === 'bh1' || st === 'bh2') return 'midpoint';
  throw new Error(`${className}: solver_type ${String(st)} is not implemented`);
}

/** The final sigma of DPM-Solver's final_sigmas_type: 0, or the smallest training sigma. */
export function dpmFinalSigma(config: SchedulerConfig, train: TrainingSigmas): number {
  if (config.final_sigmas_type === 'zero') return 0;
  if (config.final_sigmas_type === 'sigma_min') return train.sigmas[0]!;
  throw new Error(`final_sigmas_type must be one of 'zero' or 'sigma_min', got ${String(config.final_sigmas_type)}`);
}

/**
 * What DPM-Solver (multi- and singlestep), UniPC and DEIS share as diffusers schedulers: int64 timesteps, VP form
 * (init noise sigma 1, no input scaling), one model call per step, a step index with img2img begin index, a history
 * of converted model outputs, and add_noise at the begin index's sigma. Subclasses set timesteps, sigmas, index and
 * history in their set_timesteps (the constructor) and write `step`.
 */
export abstract class MultistepScheduler implements Scheduler {
  readonly timestepsDtype = 'int64' as const;
  readonly initNoiseSigma = 1;
  readonly order = 1;
  abstract readonly timesteps: readonly number[];
  abstract readonly drawsNoise: boolean;
  abstract readonly sigmas: readonly number[];
  /** Step outputs rotate through three buffers instead of a fresh allocation per step. */
  protected readonly outputs = new RotatingBuffers();
  protected readonly lc = new LinearCombiner();
  protected index!: StepIndex;
  protected history!: OutputHistory;

  setBeginIndex(index: number): void {
    this.index.setBegin(index);
  }

  scaleModelInput(sample: Float32Array, _t: number): Float32Array {
    return sample;
  }

  abstract step(modelOutput: Float32Array, t: number, sample: Float32Array, noise: NoiseSampler): Float32Array;

  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    return addNoiseAtSigma(original, noise, this.sigmas[this.index.noiseIndex(t)]!);
  }
}
