/**
 * DPM-Solver++ / DPM-Solver multistep (Lu et al. 2022, arXiv 2211.01095 / 2206.00927), exact to diffusers 0.30.3
 * DPMSolverMultistepScheduler: "DPM++ 2M" (dpmsolver++, order 2), "DPM++ 2M SDE" (sde-dpmsolver++, noise every
 * step), Karras / lu-lambda sigma schedules, lower_order_final, euler_at_final and final_sigmas_type.
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

export const dpmSolverMultistepDefaults = {
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
  lower_order_final: true,
  euler_at_final: false,
  use_karras_sigmas: false,
  use_lu_lambdas: false,
  final_sigmas_type: 'zero',
  lambda_min_clipped: -Infinity,
  variance_type: null,
  timestep_spacing: 'linspace',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
};

export class DPMSolverMultistepScheduler extends MultistepScheduler {
  readonly config: typeof dpmSolverMultistepDefaults & SchedulerConfig;
  readonly timesteps: readonly number[];
  /** The schedule's sigmas plus the final one (float32 values). */
  readonly sigmas: readonly number[];
  private readonly algorithm: DpmAlgorithm;
  private readonly solverType: DpmSolverType;
  private readonly solverOrder: number;
  private lowerOrderNums = 0;
  get drawsNoise(): boolean {
    return this.algorithm.startsWith('sde');
  }

  constructor(config: SchedulerConfig, numInferenceSteps: number) {
    super();
    const c = resolveConfig(dpmSolverMultistepDefaults, config);
    this.config = c;
    rejectUnsupported(c, 'DPMSolverMultistepScheduler');
    this.algorithm = dpmAlgorithm(c, ['dpmsolver++', 'sde-dpmsolver++', 'dpmsolver', 'sde-dpmsolver'], 'DPMSolverMultistepScheduler');
    this.solverType = dpmSolverType(c, 'DPMSolverMultistepScheduler');
    this.solverOrder = c.solver_order;
    if (this.solverOrder === 3 && this.algorithm.startsWith('sde')) {
      throw new Error(`DPMSolverMultistepScheduler: ${this.algorithm} supports solver_order 1 or 2`);
    }
    const train = multistepTraining(c, true);
    const last = c.num_train_timesteps - clippedSteps(train, c.lambda_min_clipped);
    const base = multistepTimesteps(c, numInferenceSteps, last);
    const schedule = multistepSchedule(c, train, base, numInferenceSteps, c.use_lu_lambdas === true);
    this.timesteps = schedule.timesteps;
    this.sigmas = [...schedule.sigmas, Math.fround(dpmFinalSigma(c, train))];
    this.index = new StepIndex(this.timesteps, true);
    this.history = new OutputHistory(this.solverOrder);
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, noise: NoiseSampler): Float32Array {
    const c = this.config;
    const i = this.index.stepIndex(t);
    const n = this.timesteps.length;
    const short = c.lower_order_final && n < 15;
    const lowerOrderFinal = i === n - 1 && (c.euler_at_final || short || c.final_sigmas_type === 'zero');
    const lowerOrderSecond = i === n - 2 && short;

    // convert_model_output: x0 for the ++ algorithms, epsilon for the others
    const s0 = noiseLevel(this.sigmas[i]!);
    const pc = predictionCoefficients(c.prediction_type, s0.alpha, s0.sigma);
    const dataPrediction = this.algorithm === 'dpmsolver++' || this.algorithm === 'sde-dpmsolver++';
    const converted = this.history.next(sample.length);
    if (dataPrediction) this.lc.reset().add(pc.x0S, sample).add(pc.x0M, modelOutput).into(converted);
    else this.lc.reset().add(pc.epsS, sample).add(pc.epsM, modelOutput).into(converted);
    this.history.commit();
    const noiseDraw = this.algorithm.startsWith('sde') ? noise() : null;

    const order =
      this.solverOrder === 1 || this.lowerOrderNums < 1 || lowerOrderFinal
        ? 1
        : this.solverOrder === 2 || this.lowerOrderNums < 2 || lowerOrderSecond
          ? 2
          : 3;
    const out = this.update(order, i, sample, noiseDraw);
    if (this.lowerOrderNums < this.solverOrder) this.lowerOrderNums++;
    this.index.advance();
    return out;
  }

  /** The order-k multistep update from sigma[i] to sigma[i+1], written out over the stored outputs. */
  private update(order: 1 | 2 | 3, i: number, sample: Float32Array, noise: Float32Array | null): Float32Array {
    const t = noiseLevel(this.sigmas[i + 1]!);
    const s0 = noiseLevel(this.sigmas[i]!);
    const u = dpmUpdate(this.algorithm, this.solverType, order, s0, t);
    const h = t.lambda - s0.lambda;
    const m0 = this.history.at(1);
    const lc = this.lc.reset().add(u.A, sample);
    if (order === 1) {
      lc.add(u.k0, m0);
    } else if (order === 2) {
      // D0 = m0, D1 = (m0 - m1) / r0
      const r0 = (s0.lambda - noiseLevel(this.sigmas[i - 1]!).lambda) / h;
      lc.add(u.k0 + u.k1 / r0, m0).add(-u.k1 / r0, this.history.at(2));
    } else {
      // D1_0 = (m0 - m1) / r0, D1_1 = (m1 - m2) / r1, D1 = D1_0 + r0/(r0+r1) (D1_0 - D1_1), D2 = (D1_0 - D1_1)/(r0+r1)
      const s1 = noiseLevel(this.sigmas[i - 1]!);
      const s2 = noiseLevel(this.sigmas[i - 2]!);
      const r0 = (s0.lambda - s1.lambda) / h;
      const r1 = (s1.lambda - s2.lambda) / h;
      const q = r0 / (r0 + r1);
      const p = 1 / (r0 + r1);
      const onD10 = u.k1 * (1 + q) + u.k2 * p;
      const onD11 = -u.k1 * q - u.k2 * p;
      lc.add(u.k0 + onD10 / r0, m0)
        .add(-onD10 / r0 + onD11 / r1, this.history.at(2))
        .add(-onD11 / r1, this.history.at(3));
    }
    if (noise) lc.add(u.kN, noise);
    return lc.into(this.outputs.next(sample.length));
  }

}
