/**
 * Singlestep DPM-Solver / DPM-Solver++ (Lu et al. 2022, arXiv 2206.00927 / 2211.01095), exact to diffusers 0.30.3
 * DPMSolverSinglestepScheduler: the schedule is cut into chunks of orders [1, 2, (3)], and a chunk's last step
 * integrates again from the chunk's start using every model output taken inside it. In 0.30.3 the timesteps are
 * always linspace(0, T-1, n+1) rounded (the class has no timestep_spacing).
 */
import type { NoiseSampler, SchedulerConfig } from '../scheduler.js';
import {
  MultistepScheduler,
  clippedSteps,
  dpmAlgorithm,
  dpmFinalSigma,
  dpmSolverType,
  dpmUpdate,
  multistepSchedule,
  multistepTimesteps,
  multistepTraining,
  noiseLevel,
  OutputHistory,
  type DpmAlgorithm,
  type DpmSolverType,
} from './multistep-common.js';
import { StepIndex } from './step-index.js';
import { predictionCoefficients, rejectUnsupported, resolveConfig } from './vp-common.js';
import { latentBuffer } from '../../simd/latent-kernels.js';

export const dpmSolverSinglestepDefaults = {
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
  algorithm_type: 'dpmsolver++',
  solver_type: 'midpoint',
  lower_order_final: false,
  use_karras_sigmas: false,
  final_sigmas_type: 'zero',
  lambda_min_clipped: -Infinity,
  variance_type: null,
};

/** diffusers' get_order_list: the order of each step, chunks of [1, 2, 3] (or [1, 2]) with a lower-order tail. */
export function singlestepOrders(steps: number, order: number, lowerOrderFinal: boolean): number[] {
  if (order > 3 || order < 1) throw new Error('DPMSolverSinglestepScheduler supports solver_order 1, 2 or 3');
  const repeat = (chunk: number[], times: number): number[] => Array.from({ length: Math.max(times, 0) }, () => chunk).flat();
  if (order === 1) return repeat([1], steps);
  if (!lowerOrderFinal) return order === 3 ? repeat([1, 2, 3], Math.floor(steps / 3)) : repeat([1, 2], Math.floor(steps / 2));
  if (order === 3) {
    if (steps % 3 === 0) return [...repeat([1, 2, 3], steps / 3 - 1), 1, 2, 1];
    if (steps % 3 === 1) return [...repeat([1, 2, 3], Math.floor(steps / 3)), 1];
    return [...repeat([1, 2, 3], Math.floor(steps / 3)), 1, 2];
  }
  return steps % 2 === 0 ? [...repeat([1, 2], steps / 2 - 1), 1, 1] : [...repeat([1, 2], Math.floor(steps / 2)), 1];
}

export class DPMSolverSinglestepScheduler extends MultistepScheduler {
  readonly config: typeof dpmSolverSinglestepDefaults & SchedulerConfig;
  readonly timesteps: readonly number[];
  /** The schedule's sigmas plus the final one (float32 values). */
  readonly sigmas: readonly number[];
  private readonly algorithm: DpmAlgorithm;
  private readonly solverType: DpmSolverType;
  private readonly orders: readonly number[];
  /** The sample at the start of the current chunk (diffusers' self.sample), a private copy. */
  private chunkStart: Float32Array | null = null;
  get drawsNoise(): boolean {
    return this.algorithm === 'sde-dpmsolver++';
  }

  constructor(config: SchedulerConfig, numInferenceSteps: number) {
    super();
    const c = resolveConfig(dpmSolverSinglestepDefaults, config);
    this.config = c;
    const name = 'DPMSolverSinglestepScheduler';
    rejectUnsupported(c, name);
    this.algorithm = dpmAlgorithm(c, ['dpmsolver++', 'sde-dpmsolver++', 'dpmsolver'], name);
    this.solverType = dpmSolverType(c, name);
    if (c.solver_order === 3 && this.algorithm === 'sde-dpmsolver++') {
      throw new Error(`${name}: sde-dpmsolver++ supports solver_order 1 or 2`);
    }
    const train = multistepTraining(c, false);
    const last = c.num_train_timesteps - clippedSteps(train, c.lambda_min_clipped);
    const base = multistepTimesteps({ ...c, timestep_spacing: 'linspace' }, numInferenceSteps, last);
    const schedule = multistepSchedule(c, train, base, numInferenceSteps, false);
    this.timesteps = schedule.timesteps;
    this.sigmas = [...schedule.sigmas, Math.fround(dpmFinalSigma(c, train))];
    // set_timesteps turns lower_order_final on for an uneven step count or a zero final sigma
    const lowerOrderFinal =
      c.lower_order_final || numInferenceSteps % c.solver_order !== 0 || c.final_sigmas_type === 'zero';
    this.orders = singlestepOrders(numInferenceSteps, c.solver_order, lowerOrderFinal);
    this.index = new StepIndex(this.timesteps, true);
    this.history = new OutputHistory(c.solver_order);
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, noise: NoiseSampler): Float32Array {
    const i = this.index.stepIndex(t);
    const s0 = noiseLevel(this.sigmas[i]!);
    const pc = predictionCoefficients(this.config.prediction_type, s0.alpha, s0.sigma);
    const converted = this.history.next(sample.length);
    if (this.algorithm === 'dpmsolver') this.lc.reset().add(pc.epsS, sample).add(pc.epsM, modelOutput).into(converted);
    else this.lc.reset().add(pc.x0S, sample).add(pc.x0M, modelOutput).into(converted);
    this.history.commit();
    const noiseDraw = this.algorithm === 'sde-dpmsolver++' ? noise() : null;

    let order = this.orders[i];
    if (order === undefined) throw new Error(`step index ${i} is past the schedule`);
    while (this.history.back(order) === null) order--;
    if (order === 1 || this.chunkStart === null) {
      const start = this.chunkStart?.length === sample.length ? this.chunkStart : latentBuffer(sample.length);
      start.set(sample);
      this.chunkStart = start;
    }
    const out = this.update(order as 1 | 2 | 3, i, this.chunkStart, noiseDraw);
    this.index.advance();
    return out;
  }

  /** The order-k singlestep update from the chunk start (sigma[i-k+1]) to sigma[i+1]. */
  private update(order: 1 | 2 | 3, i: number, start: Float32Array, noise: Float32Array | null): Float32Array {
    const t = noiseLevel(this.sigmas[i + 1]!);
    const s0 = noiseLevel(this.sigmas[i]!);
    const m0 = this.history.at(1);
    const lc = this.lc.reset();
    if (order === 1) {
      const u = dpmUpdate(this.algorithm, this.solverType, 1, s0, t);
      lc.add(u.A, start).add(u.k0, m0);
      if (noise) lc.add(u.kN, noise);
    } else if (order === 2) {
      // from s1: D0 = m1, D1 = (m0 - m1) / r0 with r0 = (lambda_s0 - lambda_s1) / h
      const s1 = noiseLevel(this.sigmas[i - 1]!);
      const u = dpmUpdate(this.algorithm, this.solverType, 2, s1, t);
      const r0 = (s0.lambda - s1.lambda) / (t.lambda - s1.lambda);
      lc.add(u.A, start).add(u.k1 / r0, m0).add(u.k0 - u.k1 / r0, this.history.at(2));
      if (noise) lc.add(u.kN, noise);
    } else {
      // from s2: D0 = m2, D1_0 = (m1 - m2) / r1, D1_1 = (m0 - m2) / r0
      const s1 = noiseLevel(this.sigmas[i - 1]!);
      const s2 = noiseLevel(this.sigmas[i - 2]!);
      const u = dpmUpdate(this.algorithm, this.solverType, 3, s2, t);
      const h = t.lambda - s2.lambda;
      const r0 = (s0.lambda - s2.lambda) / h;
      const r1 = (s1.lambda - s2.lambda) / h;
      let onD10: number;
      let onD11: number;
      if (this.solverType === 'midpoint') {
        // midpoint uses D1_1 alone with the first-derivative weight
        onD10 = 0;
        onD11 = u.k1;
      } else {
        // D1 = (r0 D1_0 - r1 D1_1) / (r0 - r1), D2 = 2 (D1_1 - D1_0) / (r0 - r1)
        const d = r0 - r1;
        onD10 = (u.k1 * r0) / d - (2 * u.k2) / d;
        onD11 = (-u.k1 * r1) / d + (2 * u.k2) / d;
      }
      lc.add(u.A, start)
        .add(onD11 / r0, m0)
        .add(onD10 / r1, this.history.at(2))
        .add(u.k0 - onD10 / r1 - onD11 / r0, this.history.at(3));
    }
    return lc.into(this.outputs.next(start.length));
  }

}
