/**
 * Euler on the rectified-flow ODE (Esser et al. 2024, "Scaling Rectified Flow Transformers", SD3), exact to diffusers
 * 0.30.3 FlowMatchEulerDiscreteScheduler: x_t = (1 - sigma) x0 + sigma noise, the model predicts the velocity, and a
 * step is x += (sigma_next - sigma) v. Sigmas are shifted (`shift`, SD3: 3.0) twice at the low end: once in the
 * training sigmas that bound the inference linspace, once more on the inference sigmas. There is no
 * scale_model_input (identity here); img2img noises with scale_noise (`addNoise`).
 */
import type { NoiseSampler, Scheduler, SchedulerConfig } from '../scheduler.js';
import { RotatingBuffers } from '../scheduler.js';
import { StepIndex } from './step-index.js';
import { LinearCombiner, resolveConfig } from './vp-common.js';

export const flowMatchEulerDefaults = {
  num_train_timesteps: 1000,
  shift: 1.0,
  use_dynamic_shifting: false,
  base_shift: 0.5,
  max_shift: 1.15,
  base_image_seq_len: 256,
  max_image_seq_len: 4096,
};

/** The flow config: the diffusers keys plus `mu`, set_timesteps' argument under use_dynamic_shifting (Flux). */
export type FlowMatchConfig = typeof flowMatchEulerDefaults & Partial<SchedulerConfig> & { mu?: number };

/**
 * StableDiffusion3Img2ImgPipeline.get_timesteps: the start index for img2img. Unlike the SD pipelines it truncates
 * after subtracting (n - n * strength), so e.g. 10 steps at strength 0.25 start at index 7, not 8.
 */
export function flowImg2ImgStart(numInferenceSteps: number, strength: number): number {
  const initTimestep = Math.min(numInferenceSteps * strength, numInferenceSteps);
  return Math.trunc(Math.max(numInferenceSteps - initTimestep, 0));
}

/** set_timesteps: n float32 sigmas (shifted), their float32 timesteps sigma * T, and the trailing 0. */
export function flowMatchSchedule(config: FlowMatchConfig, n: number): { timesteps: number[]; sigmas: number[] } {
  if (!Number.isInteger(n) || n < 1) throw new Error(`num_inference_steps must be a positive integer, got ${n}`);
  const f = Math.fround;
  const T = config.num_train_timesteps;
  const shift = config.shift;
  // __init__: training sigmas t / T for t = T..1 in float32, shifted in float32 unless shifting is dynamic
  const trainSigma = (t: number): number => {
    const s = f(t / T);
    return config.use_dynamic_shifting ? s : f(f(f(shift) * s) / f(1 + f(f(shift - 1) * s)));
  };
  const sigmaMax = trainSigma(T);
  const sigmaMin = trainSigma(1);
  // np.linspace(sigma_max * T, sigma_min * T, n) / T, shifted again, in float64
  const start = sigmaMax * T;
  const stop = sigmaMin * T;
  const step = n === 1 ? 0 : (stop - start) / (n - 1);
  const sigmas: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = (n > 1 && i === n - 1 ? stop : start + i * step) / T;
    let shifted: number;
    if (config.use_dynamic_shifting) {
      if (typeof config.mu !== 'number') throw new Error('use_dynamic_shifting needs `mu` in the scheduler config');
      shifted = Math.exp(config.mu) / (Math.exp(config.mu) + (1 / s - 1));
    } else {
      shifted = (shift * s) / (1 + (shift - 1) * s);
    }
    sigmas.push(f(shifted));
  }
  return { timesteps: sigmas.map((s) => f(s * T)), sigmas: [...sigmas, 0] };
}

export class FlowMatchEulerDiscreteScheduler implements Scheduler {
  /** Step outputs rotate through three buffers instead of a fresh allocation per step. */
  protected readonly outputs = new RotatingBuffers();
  readonly config: FlowMatchConfig;
  readonly timesteps: readonly number[];
  readonly timestepsDtype = 'float32' as const;
  readonly sigmas: readonly number[];
  readonly initNoiseSigma = 1;
  readonly order = 1;
  readonly drawsNoise = false;
  protected readonly index: StepIndex;
  protected readonly lc = new LinearCombiner();

  constructor(config: Partial<SchedulerConfig>, numInferenceSteps: number) {
    this.config = resolveConfig(flowMatchEulerDefaults, config);
    const schedule = flowMatchSchedule(this.config, numInferenceSteps);
    this.timesteps = schedule.timesteps;
    this.sigmas = schedule.sigmas;
    this.index = new StepIndex(this.timesteps, false);
  }

  setBeginIndex(index: number): void {
    this.index.setBegin(index);
  }

  /** The flow scheduler has no scale_model_input: the model sees x as is. */
  scaleModelInput(sample: Float32Array, _t: number): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, _noise: NoiseSampler): Float32Array {
    const i = this.index.stepIndex(t);
    const dt = this.sigmas[i + 1]! - this.sigmas[i]!;
    const out = this.lc.reset().add(1, sample).add(dt, modelOutput).into(this.outputs.next(sample.length));
    this.index.advance();
    return out;
  }

  /** scale_noise: sigma * noise + (1 - sigma) * x0 at the img2img start (or t's position without a begin index). */
  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    const sigma = this.sigmas[this.index.noiseIndex(t)]!;
    return this.lc.reset().add(1 - sigma, original).add(sigma, noise).into(new Float32Array(original.length));
  }
}
