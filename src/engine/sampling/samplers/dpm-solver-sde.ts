/**
 * DPM++ SDE (k-diffusion's sample_dpmpp_sde, r = 1/2): per step a stochastic half step to the log-midpoint sigma,
 * a model call there, and a stochastic full step from the start using the midpoint's denoised estimate; the last
 * step (to sigma 0) is a plain Euler step. diffusers 0.30.3 DPMSolverSDEScheduler: every step but the last takes two
 * entries of `timesteps` (the second is the midpoint's timestep), and the noise comes from a Brownian tree (not from
 * the pipeline's generators), seeded by `noise_sampler_seed`.
 *
 * The step arithmetic follows diffusers' float32 torch ops; `exp`/`log` are torch's own (SLEEF), because the sigma
 * pairs they produce are the Brownian tree's query times, which it rounds to 1e-6 (see brownian-tree.ts).
 */
import type { NoiseSampler, SchedulerConfig } from '../scheduler.js';
import { BrownianNoise } from '../brownian-stream.js';
import { spacedTimesteps } from '../noise-schedule.js';
import { torchExpF32, torchLogF32 } from '../sleef-f32.js';
import { f32FormulaInto } from '../../simd/latent-kernels.js';
import {
  SigmaScheduler,
  configFlag,
  initNoiseSigmaFor,
  interpAtTimesteps,
  karrasBounds,
  karrasSigmas,
  repeatAfterFirst,
  reuseBuffer,
  sigmaToT,
  trainingSigmas,
} from '../sigmas.js';

const f32 = Math.fround;

/** DPMSolverSDEScheduler.__init__ defaults, in signature order. */
export const dpmSolverSdeDefaults = {
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'linear',
  trained_betas: null,
  prediction_type: 'epsilon',
  use_karras_sigmas: false,
  noise_sampler_seed: null,
  timestep_spacing: 'linspace',
  steps_offset: 0,
} as const;

/**
 * The Brownian tree seed: the config's `noise_sampler_seed` when it names one (an integer: one tree over the whole
 * batch; a list: one tree per image), else the images' own seeds, one tree each. (diffusers draws a random seed from
 * torch's global generator when the config has none; per-image seeds keep image i reproducible from seed + i.)
 */
function treeSeeds(config: SchedulerConfig, imageSeeds: readonly bigint[] | undefined): bigint | bigint[] {
  const v = config['noise_sampler_seed'];
  if (typeof v === 'number' || typeof v === 'bigint') return BigInt(v);
  if (Array.isArray(v)) {
    return v.map((s: unknown) => {
      if (typeof s !== 'number' && typeof s !== 'bigint') throw new Error(`noise_sampler_seed list entries must be integers, got ${JSON.stringify(s)}`);
      return BigInt(s);
    });
  }
  if (v !== null && v !== undefined) throw new Error(`noise_sampler_seed must be an integer or a list of integers, got ${JSON.stringify(v)}`);
  if (!imageSeeds || imageSeeds.length === 0) throw new Error('DPM++ SDE needs a noise_sampler_seed or the image seeds');
  return [...imageSeeds];
}

/** t = -log(sigma) of a step's ends, in float32 torch ops, and the midpoint that halves the step in t. */
function stepTimes(sigma: number, sigmaNext: number): { tNow: number; tNextFull: number; tProposed: number } {
  const tNow = -torchLogF32(sigma);
  const tNextFull = -torchLogF32(sigmaNext);
  return { tNow, tNextFull, tProposed: f32(tNow + f32(f32(tNextFull - tNow) * 0.5)) };
}

export class DPMSolverSDEScheduler extends SigmaScheduler {
  /** float64 values in diffusers (this class keeps numpy's dtype); the model reads them as float32. */
  readonly timesteps: readonly number[];
  readonly sigmas: readonly number[];
  readonly initNoiseSigma: number;
  readonly order = 2;
  readonly drawsNoise = false;
  private readonly predictionType: string;
  private readonly seeds: bigint | bigint[];
  private noise: BrownianNoise | null = null;
  private beginIndex = 0;
  // first-order state kept for the second call of a step (diffusers' self.sample / self.mid_point_sigma); `start`
  // is reused from step to step, `secondCall` says whether it holds a step's start now
  private start: Float32Array | null = null;
  private secondCall = false;
  private midSigma = 0;

  /** @param imageSeeds the seeds of the batch's images (seed + i), used when the config has no noise_sampler_seed */
  constructor(config: SchedulerConfig, numInferenceSteps: number, imageSeeds?: readonly bigint[]) {
    super();
    const train = trainingSigmas(config);
    let timesteps = spacedTimesteps(config, numInferenceSteps);
    let sigmas = interpAtTimesteps(timesteps, train.sigmas);
    if (configFlag(config, 'use_karras_sigmas')) {
      // this class's _convert_to_karras reads no sigma_min / sigma_max from the config
      const [min, max] = karrasBounds(null, sigmas);
      sigmas = karrasSigmas(min, max, numInferenceSteps);
      timesteps = sigmas.map((s) => sigmaToT(s, train.logSigmas));
    }
    // the midpoints in log-sigma (numpy float64), as timesteps for the second model call of each step
    const midTimesteps = sigmas.slice(0, -1).map((s, i) => {
      const t = -Math.log(s);
      const tProposed = t + (-Math.log(sigmas[i + 1]!) - t) * 0.5;
      return sigmaToT(Math.exp(-tProposed), train.logSigmas);
    });
    this.sigmas = [...repeatAfterFirst(sigmas.map(f32)), 0];
    const layout = [timesteps[0]!];
    for (let i = 1; i < timesteps.length; i++) layout.push(midTimesteps[i - 1]!, timesteps[i]!);
    this.timesteps = layout;
    this.initNoiseSigma = initNoiseSigmaFor(config, this.sigmas);
    this.predictionType = config.prediction_type;
    if (this.predictionType !== 'epsilon' && this.predictionType !== 'v_prediction') {
      throw new Error(`prediction_type given as ${this.predictionType} must be one of \`epsilon\`, or \`v_prediction\``);
    }
    this.seeds = treeSeeds(config, imageSeeds);
  }

  override setBeginIndex(index: number): void {
    super.setBeginIndex(index);
    this.beginIndex = index;
  }

  /** Starts computing the run's Brownian noise ahead in workers (see brownian-stream.ts); `numel`: the latents'. */
  async prepare(numel: number): Promise<void> {
    this.noise?.close();
    this.noise = this.brownianNoise(numel, this.noiseQueries());
    await this.noise.prepare();
  }

  close(): void {
    this.noise?.close();
  }

  /** How many Brownian noises of the current run came from the workers (tests, benchmarks). */
  get prefetchedNoise(): number {
    return this.noise?.prefetched ?? 0;
  }

  private brownianNoise(numel: number, queries: readonly (readonly [number, number])[] = []): BrownianNoise {
    const positive = this.sigmas.filter((s) => s > 0);
    return new BrownianNoise(Math.min(...positive), Math.max(...this.sigmas), numel, this.seeds, queries);
  }

  /** The Brownian queries of the calls from the begin index on, in call order, as step() will make them. */
  private noiseQueries(): [number, number][] {
    const out: [number, number][] = [];
    let firstOrder = true;
    for (let i = this.beginIndex; i < this.timesteps.length; i++) {
      const sigma = firstOrder ? this.sigmas[i] : this.sigmas[i - 1];
      const sigmaNext = firstOrder ? this.sigmas[i + 1] : this.sigmas[i];
      if (sigma === undefined || sigmaNext === undefined || sigmaNext === 0) break;
      const { tNow, tNextFull, tProposed } = stepTimes(sigma, sigmaNext);
      out.push([torchExpF32(-tNow), torchExpF32(-(firstOrder ? tProposed : tNextFull))]);
      firstOrder = !firstOrder;
    }
    return out;
  }

  scaleModelInput(sample: Float32Array, t: number, into?: Float32Array): Float32Array {
    const sigma = this.secondCall ? this.midSigma : this.sigmas[this.currentIndex(t)]!;
    const c = f32(Math.sqrt(f32(f32(sigma * sigma) + 1)));
    return f32FormulaInto('divide', [sample], [c], into ?? this.scaled.next(sample.length));
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, _noise: NoiseSampler): Float32Array {
    const i = this.currentIndex(t);
    const n = sample.length;
    if (this.noise === null || this.noise.numel !== n) {
      this.noise?.close();
      this.noise = this.brownianNoise(n);
    }
    const firstOrder = !this.secondCall;
    const sigma = firstOrder ? this.sigmas[i]! : this.sigmas[i - 1]!;
    const sigmaNext = firstOrder ? this.sigmas[i + 1]! : this.sigmas[i]!;
    const { tNow, tNextFull, tProposed } = stepTimes(sigma, sigmaNext);
    // the denoised estimate (pred_original_sample) is computed inside each step's formula
    const denoiser = this.denoiserTerms(firstOrder ? sigma : torchExpF32(-tProposed));
    const eps = this.predictionType === 'epsilon';
    const out = this.outputs.next(n);

    if (sigmaNext === 0) {
      f32FormulaInto(eps ? 'sdeLastStepEps' : 'sdeLastStepV', [sample, modelOutput], [sigma, f32(sigmaNext - sigma), ...denoiser], out);
    } else {
      const tNext = firstOrder ? tProposed : tNextFull;
      const from = firstOrder ? sample : this.start!;
      const sigmaFrom = torchExpF32(-tNow);
      const sigmaTo = torchExpF32(-tNext);
      const from2 = f32(sigmaFrom * sigmaFrom);
      const to2 = f32(sigmaTo * sigmaTo);
      const upCandidate = f32(Math.sqrt(f32(f32(to2 * f32(from2 - to2)) / from2)));
      const sigmaUp = upCandidate < sigmaTo ? upCandidate : sigmaTo;
      const sigmaDown = f32(Math.sqrt(f32(to2 - f32(sigmaUp * sigmaUp))));
      const ancestralT = -torchLogF32(sigmaDown);
      const keep = f32(torchExpF32(-ancestralT) / sigmaFrom);
      const take = f32(Math.expm1(f32(tNow - ancestralT)));
      const z = this.noise.sample(sigmaFrom, sigmaTo);
      f32FormulaInto(eps ? 'sdeStepEps' : 'sdeStepV', [from, sample, modelOutput, z], [keep, take, sigmaUp, ...denoiser], out);
      if (firstOrder) {
        this.start = reuseBuffer(this.start, n);
        this.start.set(sample);
        this.midSigma = sigmaTo;
      }
      this.secondCall = firstOrder;
    }
    this.advance();
    return out;
  }

  /**
   * The parameters of pred_original_sample at sigmaInput (float32, like diffusers' tensor ops): epsilon
   * sample - sigma * output takes sigma; v-prediction output * a + sample / (sigma² + 1) takes a and sigma² + 1.
   */
  private denoiserTerms(sigmaInput: number): number[] {
    if (this.predictionType === 'epsilon') return [sigmaInput];
    const s2p1 = f32(f32(sigmaInput * sigmaInput) + 1);
    return [f32(-sigmaInput / f32(Math.sqrt(s2p1))), s2p1];
  }
}
