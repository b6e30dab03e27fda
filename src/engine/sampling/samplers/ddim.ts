/**
 * DDIM (Song et al. 2020, "Denoising Diffusion Implicit Models"), exact to diffusers 0.30.3 DDIMScheduler.
 * `eta` is a step() argument in diffusers; here it is read from the config (default 0, deterministic). With eta > 0
 * every step draws fresh noise.
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

export const ddimDefaults = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  clip_sample: true,
  set_alpha_to_one: true,
  steps_offset: 0,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  clip_sample_range: 1.0,
  sample_max_value: 1.0,
  timestep_spacing: 'leading',
  rescale_betas_zero_snr: false,
};

export class DDIMScheduler implements Scheduler {
  /** Step outputs rotate through three buffers instead of a fresh allocation per step. */
  private readonly outputs = new RotatingBuffers();
  readonly config: typeof ddimDefaults & SchedulerConfig;
  readonly timesteps: readonly number[];
  readonly timestepsDtype = 'int64' as const;
  readonly initNoiseSigma = 1;
  readonly order = 1;
  private readonly acp: Float32Array;
  private readonly finalAlphaCumprod: number;
  private readonly eta: number;
  /** Only DDIM with eta > 0 adds noise. */
  get drawsNoise(): boolean {
    return this.eta > 0;
  }

  constructor(config: SchedulerConfig, private readonly numInferenceSteps: number) {
    this.config = resolveConfig(ddimDefaults, config);
    rejectUnsupported(this.config, 'DDIMScheduler');
    this.acp = trainingAlphasCumprod(this.config);
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : this.acp[0]!;
    this.eta = typeof this.config.eta === 'number' ? this.config.eta : 0;
    this.timesteps = integerTimesteps(this.config, numInferenceSteps);
  }

  /** DDIM keeps no step index: img2img needs nothing but the sliced timesteps. */
  setBeginIndex(_index: number): void {}

  scaleModelInput(sample: Float32Array, _t: number): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, noise: NoiseSampler): Float32Array {
    // diffusers steps back by T // n whatever the spacing (so "linspace" lands between its own timesteps)
    const prevT = t - Math.floor(this.config.num_train_timesteps / this.numInferenceSteps);
    const acpT = this.acp[t]!;
    const acpPrev = prevT >= 0 ? this.acp[prevT]! : this.finalAlphaCumprod;
    const c = predictionCoefficients(this.config.prediction_type, Math.sqrt(acpT), Math.sqrt(1 - acpT));
    const variance = ((1 - acpPrev) / (1 - acpT)) * (1 - acpT / acpPrev);
    const std = this.eta * Math.sqrt(variance);
    // direction pointing to x_t, applied to the (unclipped) predicted epsilon
    const dir = Math.sqrt(1 - acpPrev - std * std);
    return applyX0Update(
      {
        x0S: c.x0S,
        x0M: c.x0M,
        clip: this.config.clip_sample ? this.config.clip_sample_range : null,
        p: Math.sqrt(acpPrev),
        q: dir * c.epsS,
        r: dir * c.epsM,
        e: std,
      },
      sample,
      modelOutput,
      this.eta > 0 ? noise() : null, this.outputs.next(sample.length));
  }

  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    return addNoiseAlphaCumprod(original, noise, this.acp[t]!);
  }
}
