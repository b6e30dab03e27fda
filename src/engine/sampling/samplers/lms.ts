/**
 * Linear multistep (k-diffusion sample_lms, order 4): each step integrates the Lagrange polynomial through the last
 * (up to) four ODE derivatives over [sigma_i, sigma_{i+1}]. diffusers 0.30.3 LMSDiscreteScheduler.
 */
import type { NoiseSampler, SchedulerConfig } from '../scheduler.js';
import {
  SigmaScheduler,
  configFlag,
  denoiserCoefficients,
  initNoiseSigmaFor,
  interpAtTimesteps,
  karrasBounds,
  karrasSigmas,
  sigmaSchedulerTimesteps,
  sigmaToT,
  trainingSigmas,
} from '../sigmas.js';
import { latentBuffer, linearCombinationInto } from '../../simd/latent-kernels.js';

const f32 = Math.fround;

/** LMSDiscreteScheduler.__init__ defaults, in signature order. */
export const lmsDefaults = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  use_karras_sigmas: false,
  prediction_type: 'epsilon',
  timestep_spacing: 'linspace',
  steps_offset: 0,
} as const;

/** The order diffusers' step() uses by default. */
const LMS_ORDER = 4;

// 4-point Gauss-Legendre: exact for the cubic (at most) Lagrange basis polynomials, as scipy's quad is
const GAUSS_NODES = [-0.8611363115940526, -0.33998104358485626, 0.33998104358485626, 0.8611363115940526];
const GAUSS_WEIGHTS = [0.34785484513745357, 0.6521451548625464, 0.6521451548625464, 0.34785484513745357];

/**
 * get_lms_coefficient: ∫ over [sigmas[i], sigmas[i+1]] of the Lagrange basis polynomial that is 1 at
 * sigmas[i - current] and 0 at the other sigmas[i - k], k < order.
 */
export function lmsCoefficient(sigmas: readonly number[], order: number, i: number, current: number): number {
  const from = sigmas[i]!;
  const to = sigmas[i + 1]!;
  const half = (to - from) / 2;
  const mid = (to + from) / 2;
  let sum = 0;
  for (let q = 0; q < GAUSS_NODES.length; q++) {
    const tau = mid + half * GAUSS_NODES[q]!;
    let prod = 1;
    for (let k = 0; k < order; k++) {
      if (k === current) continue;
      prod *= (tau - sigmas[i - k]!) / (sigmas[i - current]! - sigmas[i - k]!);
    }
    sum += GAUSS_WEIGHTS[q]! * prod;
  }
  return sum * half;
}

export class LMSDiscreteScheduler extends SigmaScheduler {
  readonly timesteps: readonly number[];
  readonly sigmas: readonly number[];
  readonly initNoiseSigma: number;
  readonly order = 1;
  readonly drawsNoise = false;
  private readonly predictionType: string;
  /** coefficients[i][j] weighs the derivative of j steps ago at step i. */
  private readonly coefficients: readonly Float64Array[];
  /** The last derivatives, oldest first; buffers are recycled as they fall out of the window. */
  private readonly derivatives: Float32Array[] = [];

  constructor(config: SchedulerConfig, numInferenceSteps: number) {
    super();
    this.predictionType = config.prediction_type;
    denoiserCoefficients(this.predictionType, 1); // rejects an unknown prediction_type up front
    const train = trainingSigmas(config);
    let timesteps = sigmaSchedulerTimesteps(config, numInferenceSteps);
    let sigmas = interpAtTimesteps(timesteps, train.sigmas);
    if (configFlag(config, 'use_karras_sigmas')) {
      // LMS takes its Karras bounds from the interpolated sigmas only, never from config.sigma_min / sigma_max
      const [min, max] = karrasBounds(null, sigmas);
      sigmas = karrasSigmas(min, max, numInferenceSteps);
      timesteps = sigmas.map((s) => f32(sigmaToT(s, train.logSigmas)));
    }
    this.timesteps = timesteps;
    this.sigmas = [...sigmas, 0].map(f32);
    this.initNoiseSigma = initNoiseSigmaFor(config, this.sigmas);
    this.coefficients = timesteps.map((_, i) => {
      const order = Math.min(i + 1, LMS_ORDER);
      return Float64Array.from({ length: order }, (_, j) => lmsCoefficient(this.sigmas, order, i, j));
    });
  }

  scaleModelInput(sample: Float32Array, t: number, out?: Float32Array): Float32Array {
    return this.scaleBySigma(sample, this.sigmas[this.currentIndex(t)]!, out);
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, _noise: NoiseSampler): Float32Array {
    const i = this.currentIndex(t);
    const n = sample.length;
    const sigma = this.sigmas[i]!;
    const [a, b] = denoiserCoefficients(this.predictionType, sigma);
    const history = this.derivatives;
    const recycled = history.length >= LMS_ORDER ? history.shift()! : null;
    const derivative = recycled !== null && recycled.length === n ? recycled : latentBuffer(n);
    // ((1 - a) * sample - b * output) / sigma
    linearCombinationInto([1 - a, -b], [sample, modelOutput], 2, derivative, sigma);
    history.push(derivative);
    // diffusers zips the coefficients with the stored derivatives, newest first: an img2img run that starts at
    // step i > 0 has fewer derivatives than coefficients and uses only as many terms as it has
    const coeffs = this.coefficients[i]!;
    const terms = Math.min(coeffs.length, history.length);
    // sample + sum of coeffs[j] * derivative j steps ago (1 * sample is exact)
    const coef = [1];
    const bufs = [sample];
    for (let j = 0; j < terms; j++) {
      coef.push(coeffs[j]!);
      bufs.push(history[history.length - 1 - j]!);
    }
    const out = linearCombinationInto(coef, bufs, coef.length, this.outputs.next(n));
    this.advance();
    return out;
  }
}
