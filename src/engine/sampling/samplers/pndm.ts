/**
 * PNDM (Liu et al. 2022, "Pseudo Numerical Methods for Diffusion Models on Manifolds"), exact to diffusers 0.30.3
 * PNDMScheduler: pseudo Runge-Kutta warm-up steps (PRK), then the linear multistep PLMS; with skip_prk_steps (the
 * Stable Diffusion configs) PLMS warms up itself by repeating its second timestep (n + 1 model calls).
 */
import type { NoiseSampler, Scheduler, SchedulerConfig } from '../scheduler.js';
import { RotatingBuffers } from '../scheduler.js';
import { latentBuffer } from '../../simd/latent-kernels.js';
import {
  addNoiseAlphaCumprod,
  integerTimesteps,
  LinearCombiner,
  resolveConfig,
  trainingAlphasCumprod,
} from './vp-common.js';

export const pndmDefaults = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  skip_prk_steps: false,
  set_alpha_to_one: false,
  prediction_type: 'epsilon',
  timestep_spacing: 'leading',
  steps_offset: 0,
};

/** PLMS weights of the 1st..4th-order Adams-Bashforth steps, newest model output first. */
const PLMS_WEIGHTS: readonly (readonly number[])[] = [
  [1],
  [3 / 2, -1 / 2],
  [23 / 12, -16 / 12, 5 / 12],
  [55 / 24, -59 / 24, 37 / 24, -9 / 24],
];

export class PNDMScheduler implements Scheduler {
  /** Step outputs rotate through three buffers instead of a fresh allocation per step. */
  private readonly outputs = new RotatingBuffers();
  readonly config: typeof pndmDefaults & SchedulerConfig;
  readonly timesteps: readonly number[];
  readonly timestepsDtype = 'int64' as const;
  readonly initNoiseSigma = 1;
  readonly order = 1;
  readonly drawsNoise = false;
  private readonly acp: Float32Array;
  private readonly finalAlphaCumprod: number;
  private readonly stride: number;
  private readonly prkTimesteps: readonly number[];
  private readonly lc = new LinearCombiner();
  /** Past model outputs (ets), oldest first, at most 4; buffers are recycled once they drop out. */
  private ets: Float32Array[] = [];
  private spare: Float32Array[] = [];
  private counter = 0;
  /** PRK: the running weighted sum of the four stage outputs; PLMS warm-up: the sample of the first step. */
  private curModelOutput: Float32Array | null = null;
  private curSample: Float32Array | null = null;

  constructor(config: SchedulerConfig, numInferenceSteps: number) {
    this.config = resolveConfig(pndmDefaults, config);
    const pt = this.config.prediction_type;
    if (pt !== 'epsilon' && pt !== 'v_prediction') throw new Error(`PNDMScheduler: prediction_type ${pt} unsupported`);
    this.acp = trainingAlphasCumprod({ ...this.config, rescale_betas_zero_snr: false });
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : this.acp[0]!;
    this.stride = Math.floor(this.config.num_train_timesteps / numInferenceSteps);
    const ascending = integerTimesteps(this.config, numInferenceSteps).reverse();
    if (this.config.skip_prk_steps) {
      this.prkTimesteps = [];
      const plms = [...ascending.slice(0, -1), ...ascending.slice(-2, -1), ...ascending.slice(-1)].reverse();
      this.timesteps = plms;
    } else {
      // the last four timesteps, each followed by its half-step midpoint, as the RK stages visit them
      if (numInferenceSteps < 4) {
        // diffusers fails here too (numpy cannot broadcast the short timestep list against its four stage offsets)
        throw new Error(`PNDMScheduler with skip_prk_steps false needs at least 4 steps (its Runge-Kutta warm-up), got ${numInferenceSteps}`);
      }
      const half = Math.floor(this.stride / 2);
      const pairs = ascending.slice(-4).flatMap((t) => [t, t + half]);
      const stages = pairs.slice(0, -1).flatMap((t) => [t, t]).slice(1, -1).reverse();
      this.prkTimesteps = stages;
      this.timesteps = [...stages, ...ascending.slice(0, -3).reverse()];
    }
  }

  /** PNDM counts its calls instead of indexing timesteps: img2img needs nothing but the sliced timesteps. */
  setBeginIndex(_index: number): void {}

  scaleModelInput(sample: Float32Array, _t: number): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, _noise: NoiseSampler): Float32Array {
    const out =
      this.counter < this.prkTimesteps.length && !this.config.skip_prk_steps
        ? this.stepPrk(modelOutput, t, sample)
        : this.stepPlms(modelOutput, t, sample);
    this.counter++;
    return out;
  }

  private stepPrk(modelOutput: Float32Array, t: number, sample: Float32Array): Float32Array {
    const stage = this.counter % 4;
    const prevT = t - (this.counter % 2 ? 0 : Math.floor(this.stride / 2));
    const baseT = this.prkTimesteps[this.counter - stage]!;
    if (stage === 0) {
      this.pushEt(modelOutput);
      this.curSample = this.copy(sample, this.curSample);
    }
    // RK4 weights 1/6, 1/3, 1/3, 1/6: the first three accumulate, the fourth closes the sum and is used
    const acc = (this.curModelOutput ??= latentBuffer(modelOutput.length));
    const weight = stage === 0 || stage === 3 ? 1 / 6 : 1 / 3;
    const started = stage !== 0;
    let eps: Float32Array;
    if (stage === 3) {
      eps = this.lc.reset().add(1, acc).add(weight, modelOutput).into(new Float32Array(modelOutput.length));
      acc.fill(0);
    } else {
      this.lc.reset().add(weight, modelOutput);
      if (started) this.lc.add(1, acc);
      this.lc.into(acc);
      eps = modelOutput;
    }
    return this.prevSample(this.curSample ?? sample, baseT, prevT, [1], [eps]);
  }

  private stepPlms(modelOutput: Float32Array, t: number, sample: Float32Array): Float32Array {
    let prevT = t - this.stride;
    let fromT = t;
    if (this.counter !== 1) {
      this.pushEt(modelOutput);
    } else {
      // the repeated second timestep: a Heun-like correction of the first step, taken again from its start
      prevT = t;
      fromT = t + this.stride;
    }
    const ets = this.ets;
    if (ets.length === 1 && this.counter === 0) {
      this.curSample = this.copy(sample, this.curSample);
      return this.prevSample(sample, fromT, prevT, [1], [modelOutput]);
    }
    if (ets.length === 1 && this.counter === 1) {
      const start = this.curSample ?? sample;
      this.curSample = null;
      return this.prevSample(start, fromT, prevT, [0.5, 0.5], [modelOutput, ets[0]!]);
    }
    const weights = PLMS_WEIGHTS[ets.length - 1]!;
    const newestFirst = ets.slice().reverse();
    return this.prevSample(sample, fromT, prevT, weights, newestFirst);
  }

  /**
   * diffusers' _get_prev_sample (formula (9) of the paper) with the model output given as a weighted sum of
   * outputs: x_prev = sqrt(a_prev / a_t) x - (a_prev - a_t) eps / (a_t sqrt(1 - a_prev) + sqrt(a_t (1 - a_t) a_prev)).
   */
  private prevSample(
    sample: Float32Array,
    t: number,
    prevT: number,
    weights: readonly number[],
    outputs: readonly Float32Array[],
  ): Float32Array {
    const acpT = this.acp[t]!;
    const acpPrev = prevT >= 0 ? this.acp[prevT]! : this.finalAlphaCumprod;
    const betaT = 1 - acpT;
    const sampleCoeff = Math.sqrt(acpPrev / acpT);
    const denom = acpT * Math.sqrt(1 - acpPrev) + Math.sqrt(acpT * betaT * acpPrev);
    const epsCoeff = -(acpPrev - acpT) / denom;
    // v_prediction: eps = sqrt(a_t) v + sqrt(1 - a_t) x, applied to the combined output
    const v = this.config.prediction_type === 'v_prediction';
    const lc = this.lc.reset().add(sampleCoeff + (v ? epsCoeff * Math.sqrt(betaT) : 0), sample);
    const scale = v ? epsCoeff * Math.sqrt(acpT) : epsCoeff;
    for (let k = 0; k < outputs.length; k++) lc.add(scale * weights[k]!, outputs[k]!);
    return lc.into(this.outputs.next(sample.length));
  }

  /** Appends a model output to ets (a private copy, so the caller may reuse its array), keeping the last four. */
  private pushEt(modelOutput: Float32Array): void {
    if (this.ets.length === 4) this.spare.push(this.ets.shift()!);
    this.ets.push(this.copy(modelOutput, this.spare.pop() ?? null));
  }

  private copy(src: Float32Array, into: Float32Array | null): Float32Array {
    const dst = into && into.length === src.length ? into : latentBuffer(src.length);
    dst.set(src);
    return dst;
  }

  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    return addNoiseAlphaCumprod(original, noise, this.acp[t]!);
  }
}
