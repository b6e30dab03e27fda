/**
 * DEIS (Zhang & Chen 2022, "Fast Sampling of Diffusion Models with Exponential Integrator", arXiv 2204.13902), the
 * log-rho multistep variant, exact to diffusers 0.30.3 DEISMultistepScheduler: epsilon extrapolated by Lagrange
 * polynomials in log(sigma_t / alpha_t), integrated exactly. Its last step ends on the smallest training sigma.
 */
import type { NoiseSampler, SchedulerConfig } from '../scheduler.js';
import {
  MultistepScheduler,
  multistepSchedule,
  multistepTimesteps,
  multistepTraining,
  noiseLevel,
  OutputHistory,
} from './multistep-common.js';
import { torchExpF32, torchLogF32 } from '../sleef-f32.js';
import { StepIndex } from './step-index.js';
import { predictionCoefficients, rejectUnsupported, resolveConfig } from './vp-common.js';

export const deisDefaults = {
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
  algorithm_type: 'deis',
  solver_type: 'logrho',
  lower_order_final: true,
  use_karras_sigmas: false,
  timestep_spacing: 'linspace',
  steps_offset: 0,
};

/** The integral over [rho_s0, rho_t] of the Lagrange basis polynomial through b (zero at c), in log rho. */
function ind2(t: number, b: number, c: number): number {
  return (t * (-Math.log(c) + Math.log(t) - 1)) / (Math.log(b) - Math.log(c));
}

/** The same for the quadratic basis polynomial through b (zero at c and d). */
function ind3(t: number, b: number, c: number, d: number): number {
  const lt = Math.log(t);
  const lc = Math.log(c);
  const ld = Math.log(d);
  const lb = Math.log(b);
  const numerator = t * (lc * (ld - lt + 1) - ld * lt + ld + lt * lt - 2 * lt + 2);
  return numerator / ((lb - lc) * (lb - ld));
}

export class DEISMultistepScheduler extends MultistepScheduler {
  readonly config: typeof deisDefaults & SchedulerConfig;
  readonly timesteps: readonly number[];
  readonly drawsNoise = false;
  /** The schedule's sigmas plus the final one (float32 values). */
  readonly sigmas: readonly number[];
  private lowerOrderNums = 0;

  constructor(config: SchedulerConfig, numInferenceSteps: number) {
    super();
    const c = resolveConfig(deisDefaults, config);
    this.config = c;
    rejectUnsupported(c, 'DEISMultistepScheduler');
    // __init__ remaps the DPM-Solver names onto DEIS's only algorithm and solver
    if (c.algorithm_type === 'dpmsolver' || c.algorithm_type === 'dpmsolver++') c.algorithm_type = 'deis';
    else if (c.algorithm_type !== 'deis') throw new Error(`DEISMultistepScheduler: ${c.algorithm_type} is not implemented`);
    if (['midpoint', 'heun', 'bh1', 'bh2'].includes(c.solver_type)) c.solver_type = 'logrho';
    else if (c.solver_type !== 'logrho') throw new Error(`DEISMultistepScheduler: solver ${c.solver_type} is not implemented`);
    if (c.solver_order < 1 || c.solver_order > 3) throw new Error('DEISMultistepScheduler supports solver_order 1 to 3');
    const train = multistepTraining(c, false);
    const base = multistepTimesteps(c, numInferenceSteps, c.num_train_timesteps);
    const schedule = multistepSchedule(c, train, base, numInferenceSteps, false);
    // a Karras schedule repeats its last sigma; an interpolated one ends on the smallest training sigma
    const final = schedule.source === 'converted' ? schedule.sigmas[schedule.sigmas.length - 1]! : train.sigmas[0]!;
    this.timesteps = schedule.timesteps;
    this.sigmas = [...schedule.sigmas, Math.fround(final)];
    this.index = new StepIndex(this.timesteps, true);
    this.history = new OutputHistory(c.solver_order);
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, _noise: NoiseSampler): Float32Array {
    const c = this.config;
    const i = this.index.stepIndex(t);
    const n = this.timesteps.length;
    const short = c.lower_order_final && n < 15;
    const lowerOrderFinal = i === n - 1 && short;
    const lowerOrderSecond = i === n - 2 && short;

    // convert_model_output: x0 from the prediction, then back to epsilon = (x - alpha x0) / sigma
    const s = noiseLevel(this.sigmas[i]!);
    const pc = predictionCoefficients(c.prediction_type, s.alpha, s.sigma);
    const eps = this.history.next(sample.length);
    const onSample = (1 - s.alpha * pc.x0S) / s.sigma;
    this.lc.reset().add(onSample, sample).add((-s.alpha * pc.x0M) / s.sigma, modelOutput).into(eps);
    this.history.commit();

    const order =
      c.solver_order === 1 || this.lowerOrderNums < 1 || lowerOrderFinal
        ? 1
        : c.solver_order === 2 || this.lowerOrderNums < 2 || lowerOrderSecond
          ? 2
          : 3;
    const out = this.update(order, i, sample);
    if (this.lowerOrderNums < c.solver_order) this.lowerOrderNums++;
    this.index.advance();
    return out;
  }

  private update(order: 1 | 2 | 3, i: number, sample: Float32Array): Float32Array {
    const t = noiseLevel(this.sigmas[i + 1]!);
    const s0 = noiseLevel(this.sigmas[i]!);
    const lc = this.lc.reset();
    if (order === 1) {
      // float32 as diffusers' 0-dim tensors: the noise-prediction form multiplies these coefficients by
      // alpha_t / alpha_s (~1e4 from a huge sigma_max: squaredcos, linear LDM betas), so their float32 rounding
      // (mostly lambda's, through exp(h)) moves the result by many float32 ulps of the latents
      const [ta, ts, tl] = noiseLevelF32(this.sigmas[i + 1]!);
      const [sa, , sl] = noiseLevelF32(this.sigmas[i]!);
      const h = f32(tl - sl);
      lc.add(f32(ta / sa), sample).add(-f32(ts * f32(torchExpF32(h) - 1)), this.history.at(1));
    } else {
      // x_t = alpha_t (x / alpha_s0 + sum_k coef_k m_k), rho = sigma / alpha
      const rt = t.sigma / t.alpha;
      const r0 = s0.sigma / s0.alpha;
      const s1 = noiseLevel(this.sigmas[i - 1]!);
      const r1 = s1.sigma / s1.alpha;
      lc.add(t.alpha / s0.alpha, sample);
      if (order === 2) {
        lc.add(t.alpha * (ind2(rt, r0, r1) - ind2(r0, r0, r1)), this.history.at(1));
        lc.add(t.alpha * (ind2(rt, r1, r0) - ind2(r0, r1, r0)), this.history.at(2));
      } else {
        const s2 = noiseLevel(this.sigmas[i - 2]!);
        const r2 = s2.sigma / s2.alpha;
        lc.add(t.alpha * (ind3(rt, r0, r1, r2) - ind3(r0, r0, r1, r2)), this.history.at(1));
        lc.add(t.alpha * (ind3(rt, r1, r2, r0) - ind3(r0, r1, r2, r0)), this.history.at(2));
        lc.add(t.alpha * (ind3(rt, r2, r0, r1) - ind3(r0, r2, r0, r1)), this.history.at(3));
      }
    }
    return lc.into(this.outputs.next(sample.length));
  }

}

const f32 = Math.fround;

/** _sigma_to_alpha_sigma_t and lambda = log(alpha) - log(sigma) in float32 with torch's log (deis_first_order_update). */
function noiseLevelF32(sigma: number): [alpha: number, sigma: number, lambda: number] {
  const alpha = f32(1 / f32(Math.sqrt(f32(f32(sigma * sigma) + 1))));
  const sigmaT = f32(sigma * alpha);
  return [alpha, sigmaT, f32(torchLogF32(alpha) - torchLogF32(sigmaT))];
}
