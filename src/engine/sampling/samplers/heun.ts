/**
 * Heun's second-order method on the probability-flow ODE (Karras et al. 2022, Algorithm 1 with churn 0): an Euler
 * predictor to the next sigma, then the trapezoidal corrector from a second model call there. diffusers 0.30.3
 * HeunDiscreteScheduler; every step but the last takes two entries of `timesteps`.
 */
import type { NoiseSampler, SchedulerConfig } from '../scheduler.js';
import {
  SigmaScheduler,
  configFlag,
  configNumber,
  denoiserCoefficients,
  initNoiseSigmaFor,
  interpAtTimesteps,
  karrasBounds,
  karrasSigmas,
  repeatAfterFirst,
  reuseBuffer,
  sigmaSchedulerTimesteps,
  sigmaToT,
  trainingSigmas,
} from '../sigmas.js';
import { heunFirstInto, heunSecondInto } from '../../simd/latent-kernels.js';

const f32 = Math.fround;

/** HeunDiscreteScheduler.__init__ defaults, in signature order. */
export const heunDefaults = {
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'linear',
  trained_betas: null,
  prediction_type: 'epsilon',
  use_karras_sigmas: false,
  clip_sample: false,
  clip_sample_range: 1.0,
  timestep_spacing: 'linspace',
  steps_offset: 0,
} as const;

export class HeunDiscreteScheduler extends SigmaScheduler {
  readonly timesteps: readonly number[];
  readonly sigmas: readonly number[];
  readonly initNoiseSigma: number;
  readonly order = 2;
  readonly drawsNoise = false;
  private readonly predictionType: string;
  /** Clamp range of the denoised estimate, or null when clip_sample is off. */
  private readonly clipRange: number | null;
  // predictor state, kept between the two calls of a step: its derivative, its sigma step and its start sample
  private derivative: Float32Array | null = null;
  private start: Float32Array | null = null;
  private dt: number | null = null;

  constructor(config: SchedulerConfig, numInferenceSteps: number) {
    super();
    const train = trainingSigmas(config, { expSchedule: true });
    let timesteps = sigmaSchedulerTimesteps(config, numInferenceSteps);
    let sigmas = interpAtTimesteps(timesteps, train.sigmas);
    if (configFlag(config, 'use_karras_sigmas')) {
      const [min, max] = karrasBounds(config, sigmas);
      sigmas = karrasSigmas(min, max, numInferenceSteps);
      timesteps = sigmas.map((s) => f32(sigmaToT(s, train.logSigmas)));
    }
    this.sigmas = [...repeatAfterFirst(sigmas.map(f32)), 0];
    this.timesteps = repeatAfterFirst(timesteps);
    this.initNoiseSigma = initNoiseSigmaFor(config, this.sigmas);
    this.predictionType = config.prediction_type;
    denoiserCoefficients(this.predictionType, 1); // rejects an unknown prediction_type up front
    this.clipRange = configFlag(config, 'clip_sample') ? (configNumber(config, 'clip_sample_range') ?? 1.0) : null;
  }

  scaleModelInput(sample: Float32Array, t: number, out?: Float32Array): Float32Array {
    return this.scaleBySigma(sample, this.sigmas[this.currentIndex(t)]!, out);
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, _noise: NoiseSampler): Float32Array {
    const i = this.currentIndex(t);
    const n = sample.length;
    const out = this.outputs.next(n);
    const clip = this.clipRange;
    if (this.dt === null) {
      const sigma = this.sigmas[i]!;
      const dt = this.sigmas[i + 1]! - sigma;
      const [a, b] = denoiserCoefficients(this.predictionType, sigma);
      const derivative = (this.derivative = reuseBuffer(this.derivative, n));
      const start = (this.start = reuseBuffer(this.start, n));
      start.set(sample);
      heunFirstInto({ a, b, clip, sigma, dt }, sample, modelOutput, derivative, out);
      this.dt = dt;
    } else {
      const sigmaNext = this.sigmas[i]!;
      const dt = this.dt;
      const [a, b] = denoiserCoefficients(this.predictionType, sigmaNext);
      heunSecondInto({ a, b, clip, sigma: sigmaNext, dt }, sample, modelOutput, this.start!, this.derivative!, out);
      this.dt = null;
    }
    this.advance();
    return out;
  }
}
