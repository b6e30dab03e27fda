/**
 * DDPM ancestral sampling (Ho et al. 2020), exact to diffusers 0.30.3 DDPMScheduler: the posterior mean of
 * q(x_{t-1} | x_t, x0) plus fresh noise on every step with t > 0.
 */
import type { NoiseSampler, Scheduler, SchedulerConfig } from '../scheduler.js';
import { RotatingBuffers } from '../scheduler.js';
import {
  addNoiseAlphaCumprod,
  applyX0Update,
  integerTimesteps,
  predictionCoefficients,
  rejectUnsupported,
  resolveConfig,
  trainingAlphasCumprod,
} from './vp-common.js';

export const ddpmDefaults = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  variance_type: 'fixed_small',
  clip_sample: true,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  clip_sample_range: 1.0,
  sample_max_value: 1.0,
  timestep_spacing: 'leading',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
};

export class DDPMScheduler implements Scheduler {
  /** Step outputs rotate through three buffers instead of a fresh allocation per step. */
  private readonly outputs = new RotatingBuffers();
  readonly config: typeof ddpmDefaults & SchedulerConfig;
  readonly timesteps: readonly number[];
  readonly timestepsDtype = 'int64' as const;
  readonly initNoiseSigma = 1;
  readonly order = 1;
  readonly drawsNoise = true;
  private readonly acp: Float32Array;

  constructor(config: SchedulerConfig, private readonly numInferenceSteps: number) {
    this.config = resolveConfig(ddpmDefaults, config);
    rejectUnsupported(this.config, 'DDPMScheduler');
    const vt = this.config.variance_type;
    if (vt !== 'fixed_small' && vt !== 'fixed_small_log' && vt !== 'fixed_large') {
      // fixed_large_log takes the square root of a log (NaN in diffusers too); learned ones need two output halves
      throw new Error(`DDPMScheduler: variance_type ${String(vt)} is not supported`);
    }
    this.acp = trainingAlphasCumprod(this.config);
    this.timesteps = integerTimesteps(this.config, numInferenceSteps);
  }

  /** DDPM keeps no step index: img2img needs nothing but the sliced timesteps. */
  setBeginIndex(_index: number): void {}

  scaleModelInput(sample: Float32Array, _t: number): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, noise: NoiseSampler): Float32Array {
    const prevT = t - Math.floor(this.config.num_train_timesteps / this.numInferenceSteps);
    const acpT = this.acp[t]!;
    const acpPrev = prevT >= 0 ? this.acp[prevT]! : 1;
    const betaProd = 1 - acpT;
    const betaProdPrev = 1 - acpPrev;
    const alphaT = acpT / acpPrev;
    const betaT = 1 - alphaT;
    const c = predictionCoefficients(this.config.prediction_type, Math.sqrt(acpT), Math.sqrt(betaProd));
    return applyX0Update(
      {
        x0S: c.x0S,
        x0M: c.x0M,
        clip: this.config.clip_sample ? this.config.clip_sample_range : null,
        p: (Math.sqrt(acpPrev) * betaT) / betaProd,
        q: (Math.sqrt(alphaT) * betaProdPrev) / betaProd,
        r: 0,
        e: t > 0 ? this.noiseStd(betaT, betaProdPrev / betaProd) : 0,
      },
      sample,
      modelOutput,
      t > 0 ? noise() : null, this.outputs.next(sample.length));
  }

  /** The standard deviation of the added noise (diffusers' _get_variance, then its square root where it applies). */
  private noiseStd(betaT: number, posteriorRatio: number): number {
    const variance = Math.max(posteriorRatio * betaT, 1e-20);
    switch (this.config.variance_type) {
      case 'fixed_small':
        return Math.sqrt(variance);
      case 'fixed_small_log':
        // exp(0.5 * log(variance)), used as the std directly
        return Math.exp(0.5 * Math.log(variance));
      default:
        // fixed_large: the variance is beta_t itself
        return Math.sqrt(betaT);
    }
  }

  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    return addNoiseAlphaCumprod(original, noise, this.acp[t]!);
  }
}
