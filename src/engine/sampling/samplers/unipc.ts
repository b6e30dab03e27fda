/**
 * UniPC (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework", arXiv 2302.04867), exact to diffusers
 * 0.30.3 UniPCMultistepScheduler: each step first corrects the previous step's result with the new model output
 * (UniC), then predicts the next sample (UniP), with the B(h) variants bh1 / bh2 and data (x0) or noise prediction.
 */
import type { NoiseSampler, SchedulerConfig } from '../scheduler.js';
import {
  MultistepScheduler,
  multistepSchedule,
  multistepTimesteps,
  multistepTraining,
  noiseLevel,
  OutputHistory,
  type NoiseLevel,
} from './multistep-common.js';
import { StepIndex } from './step-index.js';
import { LinearCombiner, predictionCoefficients, rejectUnsupported, resolveConfig } from './vp-common.js';
import { latentBuffer } from '../../simd/latent-kernels.js';

export const unipcDefaults = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  solver_order: 2,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0,
  predict_x0: true,
  solver_type: 'bh2',
  lower_order_final: true,
  disable_corrector: [] as number[],
  solver_p: null,
  use_karras_sigmas: false,
  timestep_spacing: 'linspace',
  steps_offset: 0,
  final_sigmas_type: 'zero',
  rescale_betas_zero_snr: false,
};

/**
 * The UniPC weights of one predictor or corrector: the rho vector for the divided differences (last entry, in the
 * corrector, for the new model output), B(h), phi_1 and the ratios r_k of the older steps.
 */
interface UniWeights {
  rhos: number[];
  bh: number;
  hPhi1: number;
}

/** Solves the small dense system a x = b (Gaussian elimination with partial pivoting, float64). */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row.slice(0, n), b[i]!]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r]![col]!) > Math.abs(m[pivot]![col]!)) pivot = r;
    [m[col], m[pivot]] = [m[pivot]!, m[col]!];
    for (let r = col + 1; r < n; r++) {
      const f = m[r]![col]! / m[col]![col]!;
      for (let k = col; k <= n; k++) m[r]![k]! -= f * m[col]![k]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r]![n]!;
    for (let k = r + 1; k < n; k++) s -= m[r]![k]! * x[k]!;
    x[r] = s / m[r]![r]!;
  }
  return x;
}

export class UniPCMultistepScheduler extends MultistepScheduler {
  readonly config: typeof unipcDefaults & SchedulerConfig;
  readonly timesteps: readonly number[];
  readonly drawsNoise = false;
  /** The schedule's sigmas plus the final one (float32 values). */
  readonly sigmas: readonly number[];
  private readonly disabled: ReadonlySet<number>;
  private lowerOrderNums = 0;
  private thisOrder = 0;
  /** The (corrected) sample the last predictor started from, and a spare buffer for the next one. */
  private lastSample: Float32Array | null = null;
  private spare: Float32Array | null = null;

  constructor(config: SchedulerConfig, numInferenceSteps: number) {
    super();
    const c = resolveConfig(unipcDefaults, config);
    this.config = c;
    rejectUnsupported(c, 'UniPCMultistepScheduler');
    if (c.solver_p !== null && c.solver_p !== undefined) throw new Error('UniPCMultistepScheduler: solver_p is not supported');
    const st = c.solver_type;
    if (st === 'midpoint' || st === 'heun' || st === 'logrho') c.solver_type = 'bh2';
    else if (st !== 'bh1' && st !== 'bh2') throw new Error(`UniPCMultistepScheduler: solver_type ${st} is not implemented`);
    this.disabled = new Set(c.disable_corrector);
    const train = multistepTraining(c, true);
    const base = multistepTimesteps(c, numInferenceSteps, c.num_train_timesteps);
    const schedule = multistepSchedule(c, train, base, numInferenceSteps, false);
    let final: number;
    if (c.final_sigmas_type === 'zero') final = 0;
    else if (c.final_sigmas_type === 'sigma_min') {
      // a Karras schedule ends on its own last sigma, an interpolated one on the smallest training sigma
      final = schedule.source === 'converted' ? schedule.sigmas[schedule.sigmas.length - 1]! : train.sigmas[0]!;
    } else throw new Error(`final_sigmas_type must be one of 'zero' or 'sigma_min', got ${String(c.final_sigmas_type)}`);
    this.timesteps = schedule.timesteps;
    this.sigmas = [...schedule.sigmas, Math.fround(final)];
    this.index = new StepIndex(this.timesteps, true);
    this.history = new OutputHistory(c.solver_order);
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, _noise: NoiseSampler): Float32Array {
    const c = this.config;
    const i = this.index.stepIndex(t);
    const useCorrector = i > 0 && !this.disabled.has(i - 1) && this.lastSample !== null;

    const s = noiseLevel(this.sigmas[i]!);
    const pc = predictionCoefficients(c.prediction_type, s.alpha, s.sigma);
    const converted = this.history.next(sample.length);
    if (c.predict_x0) this.lc.reset().add(pc.x0S, sample).add(pc.x0M, modelOutput).into(converted);
    else this.lc.reset().add(pc.epsS, sample).add(pc.epsM, modelOutput).into(converted);

    let start: Float32Array;
    if (useCorrector) {
      start = this.correct(i, converted, this.buffer(sample.length));
    } else {
      start = this.buffer(sample.length);
      start.set(sample);
    }
    this.history.commit();
    this.spare = this.lastSample;
    this.lastSample = start;

    const wanted = c.lower_order_final ? Math.min(c.solver_order, this.timesteps.length - i) : c.solver_order;
    this.thisOrder = Math.min(wanted, this.lowerOrderNums + 1);
    const out = this.predict(i, start);
    if (this.lowerOrderNums < c.solver_order) this.lowerOrderNums++;
    this.index.advance();
    return out;
  }

  /** UniC: the previous step redone from lastSample with the new output (multistep_uni_c_bh_update). */
  private correct(i: number, modelT: Float32Array, into: Float32Array): Float32Array {
    const order = this.thisOrder;
    const t = noiseLevel(this.sigmas[i]!);
    const s0 = noiseLevel(this.sigmas[i - 1]!);
    // older outputs: model_outputs[-(k+1)] at sigma[i - (k+1)], before the new one is shifted in
    const older = Array.from({ length: order - 1 }, (_, k) => noiseLevel(this.sigmas[i - (k + 2)]!));
    const w = this.weights(order, t, s0, older, true);
    const m0 = this.history.at(1);
    const lc = this.startCombination(t, s0, this.lastSample!);
    const g = this.gain(t, w);
    let onM0 = -this.mainWeight(t, w);
    older.forEach((sk, k) => {
      const rk = (sk.lambda - s0.lambda) / (t.lambda - s0.lambda);
      lc.add((g * w.rhos[k]!) / rk, this.history.at(k + 2));
      onM0 -= (g * w.rhos[k]!) / rk;
    });
    const rLast = w.rhos[w.rhos.length - 1]!;
    lc.add(g * rLast, modelT);
    onM0 -= g * rLast;
    return lc.add(onM0, m0).into(into);
  }

  /** UniP: the order-p prediction from `start` at sigma[i] to sigma[i+1] (multistep_uni_p_bh_update). */
  private predict(i: number, start: Float32Array): Float32Array {
    const order = this.thisOrder;
    const t = noiseLevel(this.sigmas[i + 1]!);
    const s0 = noiseLevel(this.sigmas[i]!);
    const older = Array.from({ length: order - 1 }, (_, k) => noiseLevel(this.sigmas[i - (k + 1)]!));
    const w = this.weights(order, t, s0, older, false);
    const lc = this.startCombination(t, s0, start);
    const g = this.gain(t, w);
    let onM0 = -this.mainWeight(t, w);
    older.forEach((sk, k) => {
      const rk = (sk.lambda - s0.lambda) / (t.lambda - s0.lambda);
      lc.add((g * w.rhos[k]!) / rk, this.history.at(k + 2));
      onM0 -= (g * w.rhos[k]!) / rk;
    });
    return lc.add(onM0, this.history.at(1)).into(this.outputs.next(start.length));
  }

  /**
   * rho, B(h) and h phi_1 for `order`: R[k][j] = r_j^k with r = [r_1..r_{p-1}, 1], b_k = h phi_{k+1} k! / B(h).
   * The predictor solves the (p-1)-square system (0.5 for p = 2), the corrector the p-square one (0.5 for p = 1).
   */
  private weights(order: number, t: NoiseLevel, s0: NoiseLevel, older: NoiseLevel[], corrector: boolean): UniWeights {
    const h = t.lambda - s0.lambda;
    const hh = this.config.predict_x0 ? -h : h;
    const hPhi1 = Math.expm1(hh);
    const bh = this.config.solver_type === 'bh1' ? hh : Math.expm1(hh);
    const rks = [...older.map((sk) => (sk.lambda - s0.lambda) / h), 1];
    const R: number[][] = [];
    const b: number[] = [];
    let hPhiK = hPhi1 / hh - 1;
    let factorial = 1;
    for (let k = 1; k <= order; k++) {
      R.push(rks.map((r) => r ** (k - 1)));
      b.push((hPhiK * factorial) / bh);
      factorial *= k + 1;
      hPhiK = hPhiK / hh - 1 / factorial;
    }
    let rhos: number[];
    if (corrector) {
      rhos = order === 1 ? [0.5] : solve(R, b);
    } else if (order === 1) {
      rhos = [];
    } else {
      rhos = order === 2 ? [0.5] : solve(R.slice(0, -1).map((row) => row.slice(0, -1)), b.slice(0, -1));
    }
    return { rhos, bh, hPhi1 };
  }

  /** x_t_ without the model terms: sigma_t/sigma_s0 x (data prediction) or alpha_t/alpha_s0 x (noise prediction). */
  private startCombination(t: NoiseLevel, s0: NoiseLevel, x: Float32Array): LinearCombiner {
    const ratio = this.config.predict_x0 ? t.sigma / s0.sigma : t.alpha / s0.alpha;
    return this.lc.reset().add(ratio, x);
  }

  /** The weight of m0 in x_t_: alpha_t h phi_1 (data prediction) or sigma_t h phi_1 (noise prediction). */
  private mainWeight(t: NoiseLevel, w: UniWeights): number {
    return (this.config.predict_x0 ? t.alpha : t.sigma) * w.hPhi1;
  }

  /** The factor of the correction sum: -alpha_t B(h) or -sigma_t B(h). */
  private gain(t: NoiseLevel, w: UniWeights): number {
    return -(this.config.predict_x0 ? t.alpha : t.sigma) * w.bh;
  }

  private buffer(length: number): Float32Array {
    const b = this.spare !== null && this.spare.length === length ? this.spare : latentBuffer(length);
    this.spare = null;
    return b;
  }

}
