/**
 * Euler's method on the probability-flow ODE (Karras et al. 2022, Algorithm 2 with churn 0): diffusers 0.30.3
 * EulerDiscreteScheduler.
 */
import type { NoiseSampler, SchedulerConfig } from '../scheduler.js';
import { torchLinspaceF32 } from '../noise-schedule.js';
import {
  SigmaScheduler,
  configFlag,
  configString,
  denoiserCoefficients,
  initNoiseSigmaFor,
  interpAtTimesteps,
  karrasBounds,
  karrasSigmas,
  sigmaSchedulerTimesteps,
  sigmaToT,
  trainingSigmas,
} from '../sigmas.js';
import { linearCombinationInto } from '../../simd/latent-kernels.js';

const f32 = Math.fround;

/** EulerDiscreteScheduler.__init__ defaults, in signature order. */
export const eulerDefaults = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  prediction_type: 'epsilon',
  interpolation_type: 'linear',
  use_karras_sigmas: false,
  sigma_min: null,
  sigma_max: null,
  timestep_spacing: 'linspace',
  timestep_type: 'discrete',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
  final_sigmas_type: 'zero',
} as const;

export class EulerDiscreteScheduler extends SigmaScheduler {
  readonly timesteps: readonly number[];
  readonly sigmas: readonly number[];
  readonly initNoiseSigma: number;
  readonly order = 1;
  readonly drawsNoise = true;
  /** prev = keep[i] * sample + take[i] * model_output: the Euler update folded into two constants per step. */
  private readonly keep: Float64Array;
  private readonly take: Float64Array;

  constructor(config: SchedulerConfig, numInferenceSteps: number) {
    super();
    const train = trainingSigmas(config, { zeroSnr: true });
    let timesteps = sigmaSchedulerTimesteps(config, numInferenceSteps);
    let sigmas: number[];
    const interpolation = configString(config, 'interpolation_type', 'linear');
    if (interpolation === 'linear') {
      sigmas = interpAtTimesteps(timesteps, train.sigmas);
    } else if (interpolation === 'log_linear') {
      // diffusers' log_linear yields n+1 sigmas for n timesteps (plus the final one): the last step ends at the
      // smallest training sigma instead of the final sigma. Kept as is for parity.
      const last = train.sigmas.length - 1;
      const logs = torchLinspaceF32(f32(Math.log(train.sigmas[last]!)), f32(Math.log(train.sigmas[0]!)), numInferenceSteps + 1);
      sigmas = Array.from(logs, (l) => f32(Math.exp(l)));
    } else {
      throw new Error(`${interpolation} is not implemented. Please specify interpolation_type to either 'linear' or 'log_linear'`);
    }
    if (configFlag(config, 'use_karras_sigmas')) {
      const [min, max] = karrasBounds(config, sigmas);
      sigmas = karrasSigmas(min, max, numInferenceSteps);
      timesteps = sigmas.map((s) => f32(sigmaToT(s, train.logSigmas)));
    }
    const finalType = configString(config, 'final_sigmas_type', 'zero');
    if (finalType !== 'zero' && finalType !== 'sigma_min') {
      throw new Error(`\`final_sigmas_type\` must be one of 'zero', or 'sigma_min', but got ${finalType}`);
    }
    this.sigmas = [...sigmas, finalType === 'zero' ? 0 : train.sigmas[0]!].map(f32);
    if (config.timestep_type === 'continuous' && config.prediction_type === 'v_prediction') {
      // EDM-style conditioning: the model gets 0.25 * ln(sigma) (float32 tensor ops) instead of a training timestep
      timesteps = this.sigmas.slice(0, -1).map((s) => f32(0.25 * f32(Math.log(s))));
    }
    this.timesteps = timesteps;
    this.initNoiseSigma = initNoiseSigmaFor(config, this.sigmas);

    const steps = this.sigmas.length - 1;
    this.keep = new Float64Array(steps);
    this.take = new Float64Array(steps);
    for (let i = 0; i < steps; i++) {
      const sigma = this.sigmas[i]!;
      const [a, b] = denoiserCoefficients(config.prediction_type, sigma);
      // derivative = (sample - x0) / sigma, prev = sample + derivative * (sigma_next - sigma)
      const h = (this.sigmas[i + 1]! - sigma) / sigma;
      this.keep[i] = 1 + (1 - a) * h;
      this.take[i] = -b * h;
    }
  }

  scaleModelInput(sample: Float32Array, t: number, out?: Float32Array): Float32Array {
    return this.scaleBySigma(sample, this.sigmas[this.currentIndex(t)]!, out);
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, noise: NoiseSampler): Float32Array {
    const i = this.currentIndex(t);
    // diffusers draws the churn noise on every step even with s_churn 0; drawing it keeps the generator where
    // diffusers leaves it (a refiner or second pipeline sharing the generator sees the same stream)
    noise();
    const out = linearCombinationInto([this.keep[i]!, this.take[i]!], [sample, modelOutput], 2, this.outputs.next(sample.length));
    this.advance();
    return out;
  }
}
