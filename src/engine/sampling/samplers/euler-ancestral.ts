/**
 * Ancestral Euler (k-diffusion sample_euler_ancestral, eta 1): an Euler step down to sigma_down, then fresh noise of
 * size sigma_up. diffusers 0.30.3 EulerAncestralDiscreteScheduler.
 */
import type { NoiseSampler, SchedulerConfig } from '../scheduler.js';
import {
  SigmaScheduler,
  ancestralSplit,
  denoiserCoefficients,
  initNoiseSigmaFor,
  interpAtTimesteps,
  sigmaSchedulerTimesteps,
  trainingSigmas,
} from '../sigmas.js';
import { linearCombinationInto } from '../../simd/latent-kernels.js';

const f32 = Math.fround;

/** EulerAncestralDiscreteScheduler.__init__ defaults, in signature order. */
export const eulerAncestralDefaults = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  prediction_type: 'epsilon',
  timestep_spacing: 'linspace',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
} as const;

export class EulerAncestralDiscreteScheduler extends SigmaScheduler {
  readonly timesteps: readonly number[];
  readonly sigmas: readonly number[];
  readonly initNoiseSigma: number;
  readonly order = 1;
  readonly drawsNoise = true;
  /** prev = keep[i] * sample + take[i] * model_output + up[i] * noise. */
  private readonly keep: Float64Array;
  private readonly take: Float64Array;
  private readonly up: Float64Array;

  constructor(config: SchedulerConfig, numInferenceSteps: number) {
    super();
    if (config.prediction_type === 'sample') throw new Error('prediction_type not implemented yet: sample');
    const train = trainingSigmas(config, { zeroSnr: true });
    this.timesteps = sigmaSchedulerTimesteps(config, numInferenceSteps);
    this.sigmas = [...interpAtTimesteps(this.timesteps, train.sigmas), 0].map(f32);
    this.initNoiseSigma = initNoiseSigmaFor(config, this.sigmas);

    const steps = this.sigmas.length - 1;
    this.keep = new Float64Array(steps);
    this.take = new Float64Array(steps);
    this.up = new Float64Array(steps);
    for (let i = 0; i < steps; i++) {
      const sigma = this.sigmas[i]!;
      const { up, down } = ancestralSplit(sigma, this.sigmas[i + 1]!);
      const [a, b] = denoiserCoefficients(config.prediction_type, sigma);
      const h = (down - sigma) / sigma;
      this.keep[i] = 1 + (1 - a) * h;
      this.take[i] = -b * h;
      this.up[i] = up;
    }
  }

  scaleModelInput(sample: Float32Array, t: number, out?: Float32Array): Float32Array {
    return this.scaleBySigma(sample, this.sigmas[this.currentIndex(t)]!, out);
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, noise: NoiseSampler): Float32Array {
    const i = this.currentIndex(t);
    const z = noise();
    const out = linearCombinationInto(
      [this.keep[i]!, this.take[i]!, this.up[i]!], [sample, modelOutput, z], 3, this.outputs.next(sample.length),
    );
    this.advance();
    return out;
  }
}
