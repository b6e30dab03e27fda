/**
 * Ancestral DPM-Solver-2 (k-diffusion sample_dpm_2_ancestral, eta 1): the midpoint step aims at sigma_down and fresh
 * noise of size sigma_up is added. diffusers 0.30.3 KDPM2AncestralDiscreteScheduler, which draws its noise on every
 * step call, the midpoint calls included, although only the second call of each step uses it.
 */
import type { NoiseSampler, SchedulerConfig } from '../scheduler.js';
import {
  SigmaScheduler,
  ancestralSplit,
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

/** KDPM2AncestralDiscreteScheduler.__init__ defaults, in signature order. */
export const kdpm2AncestralDefaults = {
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

export class KDPM2AncestralDiscreteScheduler extends SigmaScheduler {
  readonly timesteps: readonly number[];
  readonly sigmas: readonly number[];
  /** Geometric midpoints between each sigma and its sigma_down, laid out like `sigmas`. */
  readonly sigmasInterpol: readonly number[];
  private readonly sigmasUp: readonly number[];
  private readonly sigmasDown: readonly number[];
  readonly initNoiseSigma: number;
  readonly order = 2;
  readonly drawsNoise = true;
  private readonly predictionType: string;
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
    const last = full.length - 1;
    const splits = full.map((s, k) => ancestralSplit(s, k < last ? full[k + 1]! : 0));
    const up = splits.map(({ up }) => f32(up));
    const down = splits.map(({ down }, k) => (k < last ? f32(down) : 0));
    const interpol = full.map((s, k) => (k >= last - 1 ? 0 : torchLogLerpHalf(s, down[k]!)));
    this.sigmas = dpm2Layout(full);
    this.sigmasInterpol = dpm2Layout(interpol);
    this.sigmasUp = dpm2Layout(up);
    this.sigmasDown = dpm2Layout(down);
    const midTimesteps = interpol.slice(0, -2).map((s) => f32(sigmaToT(s, train.logSigmas)));
    this.timesteps = [timesteps[0]!, ...midTimesteps.flatMap((mid, k) => [mid, timesteps[k + 1]!])];
    this.initNoiseSigma = initNoiseSigmaFor(config, this.sigmas);
  }

  scaleModelInput(sample: Float32Array, t: number, out?: Float32Array): Float32Array {
    const i = this.currentIndex(t);
    return this.scaleBySigma(sample, this.midpointPending ? this.sigmasInterpol[i - 1]! : this.sigmas[i]!, out);
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, noise: NoiseSampler): Float32Array {
    const i = this.currentIndex(t);
    const z = noise();
    const n = sample.length;
    const out = this.outputs.next(n);
    if (!this.midpointPending) {
      const sigma = this.sigmas[i]!;
      const [a, b] = denoiserCoefficients(this.predictionType, sigma);
      const h = (this.sigmasInterpol[i]! - sigma) / sigma;
      const keep = 1 + (1 - a) * h;
      const take = -b * h;
      const start = (this.start = reuseBuffer(this.start, n));
      start.set(sample);
      linearCombinationInto([keep, take], [sample, modelOutput], 2, out);
      this.midpointPending = true;
    } else {
      const sigma = this.sigmas[i - 1]!;
      const mid = this.sigmasInterpol[i - 1]!;
      const up = this.sigmasUp[i - 1]!;
      const dt = this.sigmasDown[i - 1]! - sigma;
      const [a, b] = denoiserCoefficients(this.predictionType, mid);
      const fromSample = ((1 - a) * dt) / mid;
      const fromOutput = (-b * dt) / mid;
      const start = this.start!;
      // 1 * start is exact
      linearCombinationInto([1, fromSample, fromOutput, up], [start, sample, modelOutput, z], 4, out);
      this.midpointPending = false;
    }
    this.advance();
    return out;
  }
}
