/**
 * DPM-Solver-2 in k-diffusion's form (sample_dpm_2): an Euler step to the geometric midpoint of sigma and the next
 * sigma, a second model call there, and the full step with the midpoint derivative. diffusers 0.30.3
 * KDPM2DiscreteScheduler; the midpoint calls get interpolated (fractional) timesteps interleaved in `timesteps`.
 */
import type { NoiseSampler, SchedulerConfig } from '../scheduler.js';
import {
  SigmaScheduler,
  configFlag,
  denoiserCoefficients,
  dpm2Layout,
  initNoiseSigmaFor,
  interpAtTimesteps,
  karrasBounds,
  karrasSigmas,
  reuseBuffer,
  roundedSigmaTimesteps,
  sigmaSchedulerTimesteps,
  sigmaToT,
  torchLogLerpHalf,
  trainingSigmas,
} from '../sigmas.js';
import { linearCombinationInto } from '../../simd/latent-kernels.js';

const f32 = Math.fround;

/** KDPM2DiscreteScheduler.__init__ defaults, in signature order. */
export const kdpm2Defaults = {
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'linear',
  trained_betas: null,
  use_karras_sigmas: false,
  prediction_type: 'epsilon',
  timestep_spacing: 'linspace',
  steps_offset: 0,
} as const;

export class KDPM2DiscreteScheduler extends SigmaScheduler {
  readonly timesteps: readonly number[];
  readonly sigmas: readonly number[];
  /** Geometric midpoints between consecutive sigmas, laid out like `sigmas`. */
  readonly sigmasInterpol: readonly number[];
  readonly initNoiseSigma: number;
  readonly order = 2;
  readonly drawsNoise = false;
  private readonly predictionType: string;
  /** The sample the midpoint step started from, while a step is half done. */
  private start: Float32Array | null = null;
  private midpointPending = false;

  constructor(config: SchedulerConfig, numInferenceSteps: number) {
    super();
    if (config.prediction_type === 'sample') throw new Error('prediction_type not implemented yet: sample');
    this.predictionType = config.prediction_type;
    denoiserCoefficients(this.predictionType, 1); // rejects an unknown prediction_type up front
    const train = trainingSigmas(config);
    let timesteps = sigmaSchedulerTimesteps(config, numInferenceSteps);
    let sigmas = interpAtTimesteps(timesteps, train.sigmas);
    if (configFlag(config, 'use_karras_sigmas')) {
      const [min, max] = karrasBounds(config, sigmas);
      sigmas = karrasSigmas(min, max, numInferenceSteps);
      timesteps = roundedSigmaTimesteps(sigmas, train.logSigmas);
    }
    const full = [...sigmas, 0].map(f32);
    // exp(lerp(log sigma_k, log sigma_{k-1}, 0.5)); k = 0 pairs with the final 0 through torch's roll and is NaN
    const interpol = full.map((s, k) => torchLogLerpHalf(s, full[(k + full.length - 1) % full.length]!));
    this.sigmas = dpm2Layout(full);
    this.sigmasInterpol = dpm2Layout(interpol);
    const midTimesteps = interpol.slice(1, -1).map((s) => f32(sigmaToT(s, train.logSigmas)));
    this.timesteps = [timesteps[0]!, ...midTimesteps.flatMap((mid, k) => [mid, timesteps[k + 1]!])];
    this.initNoiseSigma = initNoiseSigmaFor(config, this.sigmas);
  }

  scaleModelInput(sample: Float32Array, t: number, out?: Float32Array): Float32Array {
    const i = this.currentIndex(t);
    return this.scaleBySigma(sample, this.midpointPending ? this.sigmasInterpol[i]! : this.sigmas[i]!, out);
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, _noise: NoiseSampler): Float32Array {
    const i = this.currentIndex(t);
    const n = sample.length;
    const out = this.outputs.next(n);
    if (!this.midpointPending) {
      const sigma = this.sigmas[i]!;
      const [a, b] = denoiserCoefficients(this.predictionType, sigma);
      const h = (this.sigmasInterpol[i + 1]! - sigma) / sigma;
      const keep = 1 + (1 - a) * h;
      const take = -b * h;
      const start = (this.start = reuseBuffer(this.start, n));
      start.set(sample);
      linearCombinationInto([keep, take], [sample, modelOutput], 2, out);
      this.midpointPending = true;
    } else {
      const sigma = this.sigmas[i - 1]!;
      const mid = this.sigmasInterpol[i]!;
      const dt = this.sigmas[i]! - sigma;
      const [a, b] = denoiserCoefficients(this.predictionType, mid);
      // derivative at the midpoint = (sample - x0) / mid, applied from the step's start sample
      const fromSample = ((1 - a) * dt) / mid;
      const fromOutput = (-b * dt) / mid;
      const start = this.start!;
      linearCombinationInto([1, fromSample, fromOutput], [start, sample, modelOutput], 3, out); // 1 * start is exact
      this.midpointPending = false;
    }
    this.advance();
    return out;
  }
}
