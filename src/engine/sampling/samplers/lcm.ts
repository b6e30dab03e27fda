/**
 * Latent Consistency Models multistep sampling (Luo et al. 2023, arXiv 2310.04378), exact to diffusers 0.30.3
 * LCMScheduler: timesteps picked from the distillation schedule (original_inference_steps), the consistency boundary
 * condition (c_skip, c_out) on each x0 prediction, and fresh noise back to the next timestep on every step but the
 * last. LCM ignores timestep_spacing; img2img passes `strength`, which shortens the distillation schedule.
 */
import type { NoiseSampler, Scheduler, SchedulerConfig } from '../scheduler.js';
import { RotatingBuffers } from '../scheduler.js';
import { StepIndex } from './step-index.js';
import {
  addNoiseAlphaCumprod,
  applyX0Update,
  predictionCoefficients,
  rejectUnsupported,
  resolveConfig,
  trainingAlphasCumprod,
} from './vp-common.js';

export const lcmDefaults = {
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  trained_betas: null,
  original_inference_steps: 50,
  clip_sample: false,
  clip_sample_range: 1.0,
  set_alpha_to_one: true,
  steps_offset: 0,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0,
  timestep_spacing: 'leading',
  timestep_scaling: 10.0,
  rescale_betas_zero_snr: false,
};

export interface LcmOptions {
  /** img2img strength: the schedule is drawn from the first strength * original_inference_steps distillation steps. */
  strength?: number;
  /** Overrides config.original_inference_steps (set_timesteps' argument of the same name). */
  originalInferenceSteps?: number;
}

/** LCMScheduler.set_timesteps: n evenly spaced picks, noisiest first, from the strided distillation timesteps. */
export function lcmTimesteps(config: SchedulerConfig, n: number, originalSteps: number, strength: number): number[] {
  const T = config.num_train_timesteps;
  if (originalSteps > T) throw new Error(`original_inference_steps ${originalSteps} exceeds num_train_timesteps ${T}`);
  if (n > T) throw new Error(`num_inference_steps ${n} exceeds num_train_timesteps ${T}`);
  const k = Math.floor(T / originalSteps);
  const count = Math.trunc(originalSteps * strength);
  const origin = Array.from({ length: count }, (_, i) => (i + 1) * k - 1).reverse();
  if (Math.floor(origin.length / n) < 1) {
    throw new Error(
      `original_inference_steps x strength (${originalSteps} x ${strength}) is smaller than num_inference_steps ${n}`,
    );
  }
  if (n > originalSteps) throw new Error(`num_inference_steps ${n} exceeds original_inference_steps ${originalSteps}`);
  // np.floor(np.linspace(0, len, n, endpoint=False)): i * (len / n)
  const stride = origin.length / n;
  return Array.from({ length: n }, (_, i) => origin[Math.floor(i * stride)]!);
}

export class LCMScheduler implements Scheduler {
  /** Step outputs rotate through three buffers instead of a fresh allocation per step. */
  private readonly outputs = new RotatingBuffers();
  readonly config: typeof lcmDefaults & SchedulerConfig;
  readonly timesteps: readonly number[];
  readonly timestepsDtype = 'int64' as const;
  readonly initNoiseSigma = 1;
  readonly order = 1;
  readonly drawsNoise = true;
  private readonly acp: Float32Array;
  private readonly finalAlphaCumprod: number;
  private readonly index: StepIndex;

  constructor(
    config: SchedulerConfig,
    private readonly numInferenceSteps: number,
    options: LcmOptions = {},
  ) {
    this.config = resolveConfig(lcmDefaults, config);
    rejectUnsupported(this.config, 'LCMScheduler');
    this.acp = trainingAlphasCumprod(this.config);
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : this.acp[0]!;
    const original = options.originalInferenceSteps ?? this.config.original_inference_steps;
    this.timesteps = lcmTimesteps(this.config, numInferenceSteps, original, options.strength ?? 1);
    this.index = new StepIndex(this.timesteps, false);
  }

  setBeginIndex(index: number): void {
    this.index.setBegin(index);
  }

  scaleModelInput(sample: Float32Array, _t: number): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, noise: NoiseSampler): Float32Array {
    const c = this.config;
    const i = this.index.stepIndex(t);
    const prevT = i + 1 < this.timesteps.length ? this.timesteps[i + 1]! : t;
    const acpT = this.acp[t]!;
    const acpPrev = prevT >= 0 ? this.acp[prevT]! : this.finalAlphaCumprod;
    // consistency boundary condition: denoised = c_out * x0 + c_skip * x, with sigma_data 0.5
    const scaled = t * c.timestep_scaling;
    const cSkip = 0.25 / (scaled * scaled + 0.25);
    const cOut = scaled / Math.sqrt(scaled * scaled + 0.25);
    const pc = predictionCoefficients(c.prediction_type, Math.sqrt(acpT), Math.sqrt(1 - acpT));
    const last = i === this.numInferenceSteps - 1;
    const keep = last ? 1 : Math.sqrt(acpPrev);
    const out = applyX0Update(
      {
        x0S: pc.x0S,
        x0M: pc.x0M,
        clip: c.clip_sample ? c.clip_sample_range : null,
        p: keep * cOut,
        q: keep * cSkip,
        r: 0,
        e: last ? 0 : Math.sqrt(1 - acpPrev),
      },
      sample,
      modelOutput,
      last ? null : noise(), this.outputs.next(sample.length));
    this.index.advance();
    return out;
  }

  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    return addNoiseAlphaCumprod(original, noise, this.acp[t]!);
  }
}
