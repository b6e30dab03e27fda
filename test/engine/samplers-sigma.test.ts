/**
 * The k-diffusion family samplers against the diffusers 0.30.3 rollouts in test/fixtures/reference/sched_<variant>.json:
 * schedule (timesteps, sigmas, init_noise_sigma), every scale_model_input / step of the txt2img rollout and of the
 * img2img (strength) rollout, fed the stored model outputs and chained on our own latents.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { img2imgTimesteps } from '../../src/engine/sampling/index.js';
import type { Scheduler, SchedulerConfig } from '../../src/engine/sampling/scheduler.js';
import { EulerAncestralDiscreteScheduler } from '../../src/engine/sampling/samplers/euler-ancestral.js';
import { EulerDiscreteScheduler } from '../../src/engine/sampling/samplers/euler.js';
import { HeunDiscreteScheduler } from '../../src/engine/sampling/samplers/heun.js';
import { KDPM2AncestralDiscreteScheduler } from '../../src/engine/sampling/samplers/kdpm2-ancestral.js';
import { KDPM2DiscreteScheduler } from '../../src/engine/sampling/samplers/kdpm2.js';
import { LMSDiscreteScheduler, lmsCoefficient } from '../../src/engine/sampling/samplers/lms.js';
import {
  karrasSigmas,
  numpyArange,
  rescaleZeroTerminalSnr,
  sigmaSchedulerTimesteps,
  sigmaToT,
  trainingSigmas,
} from '../../src/engine/sampling/sigmas.js';
import { TorchGenerator } from '../../src/engine/sampling/torch-rng.js';

const REFERENCE = join(import.meta.dirname, '..', 'fixtures', 'reference');
const ATOL = 1e-5;
const RTOL = 1e-4;

interface TraceStep {
  i: number;
  t: number;
  x_in: number[];
  model_out: number[];
  x: number[];
}
interface TraceCase {
  variant: string;
  class: string;
  config: SchedulerConfig;
  prediction_type: string;
  timestep_spacing: string;
  num_inference_steps: number;
  seeds: { x: number; step_generator: number };
  set_timesteps: {
    timesteps: number[];
    timesteps_dtype: string;
    sigmas: number[];
    init_noise_sigma: number;
    order: number;
  };
  noise: number[];
  x_start: number[];
  steps: TraceStep[];
  img2img: {
    num_inference_steps: number;
    strength: number;
    t_start: number;
    begin_index: number | null;
    timesteps: number[];
    first_timestep: number;
    x0: number[];
    noise: number[];
    noised: number[];
    steps: TraceStep[];
  }[];
}

type SchedulerCtor = new (config: SchedulerConfig, steps: number) => Scheduler;
const CLASSES: Record<string, SchedulerCtor> = {
  EulerDiscreteScheduler,
  EulerAncestralDiscreteScheduler,
  HeunDiscreteScheduler,
  KDPM2DiscreteScheduler,
  KDPM2AncestralDiscreteScheduler,
  LMSDiscreteScheduler,
};
const VARIANTS = ['euler', 'euler_karras', 'euler_ancestral', 'heun', 'kdpm2', 'kdpm2_ancestral', 'lms'];

function loadTrace(variant: string): TraceCase[] {
  return (JSON.parse(readFileSync(join(REFERENCE, `sched_${variant}.json`), 'utf8')) as { cases: TraceCase[] }).cases;
}

/** Every element within |a - b| <= atol + rtol * |b| (b = reference). */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const b = Math.fround(expected[i]!);
    const ok = Number.isNaN(b) ? Number.isNaN(a) : Math.abs(a - b) <= ATOL + RTOL * Math.abs(b);
    if (!ok) expect.fail(`${what}[${i}]: got ${a}, expected ${b}`);
  }
}

/** The fixtures' synthetic model, float32: 0.5 * tanh(x) + 0.1 * cos(x * (1 + t/1000)). */
function syntheticModel(xIn: Float32Array, t: number): Float32Array {
  const f = Math.fround(1 + t / 1000);
  return xIn.map((x) => Math.fround(Math.fround(0.5 * Math.fround(Math.tanh(x))) + Math.fround(0.1 * Math.fround(Math.cos(Math.fround(x * f))))));
}

/** Runs the diffusers loop from `start` over `steps`, checking x_in and x at every call. */
function rollout(
  s: Scheduler,
  timesteps: readonly number[],
  start: Float32Array,
  steps: TraceStep[],
  stepSeed: number,
  label: string,
): void {
  const g = new TorchGenerator(stepSeed);
  const noise = () => g.randn([1, 4, 4, 4]);
  let x = start;
  expect(steps).toHaveLength(timesteps.length);
  for (const ref of steps) {
    const t = timesteps[ref.i]!;
    expect(Math.abs(t - ref.t), `${label} step ${ref.i}: t`).toBeLessThanOrEqual(ATOL + RTOL * Math.abs(ref.t));
    const xIn = s.scaleModelInput(x, t);
    expectClose(xIn, ref.x_in, `${label} step ${ref.i} x_in`);
    // the stored output is the synthetic model at the stored input: our t and x_in feed the same model
    expectClose(syntheticModel(xIn, t), ref.model_out, `${label} step ${ref.i} model(x_in, t)`);
    x = s.step(Float32Array.from(ref.model_out), t, x, noise);
    expectClose(x, ref.x, `${label} step ${ref.i} x`);
  }
}

for (const variant of VARIANTS) {
  describe(`sched_${variant}`, () => {
    for (const c of loadTrace(variant)) {
      const label = `${variant} ${c.prediction_type} ${c.timestep_spacing}`;
      const Ctor = CLASSES[c.class];
      it(`${label}: schedule`, () => {
        expect(Ctor, c.class).toBeDefined();
        const s = new Ctor!(c.config, c.num_inference_steps);
        expect(c.set_timesteps.timesteps_dtype).toBe('float32');
        expect(s.timestepsDtype).toBe('float32');
        expectClose(s.timesteps, c.set_timesteps.timesteps, `${label} timesteps`);
        expectClose(s.sigmas!, c.set_timesteps.sigmas, `${label} sigmas`);
        expectClose([s.initNoiseSigma], [c.set_timesteps.init_noise_sigma], `${label} init_noise_sigma`);
        expect(s.order).toBe(c.set_timesteps.order);
        expect(c.steps).toHaveLength(s.timesteps.length);
      });
      it(`${label}: txt2img rollout`, () => {
        const s = new Ctor!(c.config, c.num_inference_steps);
        const start = Float32Array.from(c.noise, (v) => v * s.initNoiseSigma);
        expectClose(start, c.x_start, `${label} x_start`);
        rollout(s, s.timesteps, start, c.steps, c.seeds.step_generator, label);
      });
      for (const im of c.img2img) {
        it(`${label}: img2img strength ${im.strength}`, () => {
          const s = new Ctor!(c.config, im.num_inference_steps);
          const { timesteps, tStart, beginIndex } = img2imgTimesteps(s, im.num_inference_steps, im.strength);
          expect(beginIndex).toBe(im.t_start * s.order);
          expect(beginIndex).toBe(im.begin_index);
          expectClose(timesteps, im.timesteps, `${label} img2img timesteps`);
          expectClose([tStart], [im.first_timestep], `${label} first timestep`);
          const noised = s.addNoise(Float32Array.from(im.x0), Float32Array.from(im.noise), tStart);
          expectClose(noised, im.noised, `${label} noised`);
          rollout(s, timesteps, noised, im.steps, c.seeds.step_generator, `${label} img2img`);
        });
      }
    }
  });
}

const BASE: SchedulerConfig = {
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  trained_betas: null,
  prediction_type: 'epsilon',
  timestep_spacing: 'linspace',
  steps_offset: 1,
};

describe('sigma schedule details', () => {
  const schedule = JSON.parse(readFileSync(join(REFERENCE, 'schedule_base.json'), 'utf8')) as {
    betas: number[];
    alphas_cumprod: number[];
    sigmas_train: number[];
  };

  it('builds the SD1.5 training sigmas from torch betas bit-exactly (torch cumprod accumulates in double)', () => {
    const train = trainingSigmas({ ...BASE, trained_betas: schedule.betas });
    expect(Array.from(train.alphasCumprod)).toEqual(schedule.alphas_cumprod.map(Math.fround));
    expect(Array.from(train.sigmas)).toEqual(schedule.sigmas_train.map(Math.fround));
    expectClose(trainingSigmas(BASE).sigmas, schedule.sigmas_train, 'scaled_linear sigmas');
  });

  it('"trailing" rounds the way numpy arange fills (48 steps: 937.5 - delta rounds down)', () => {
    const ts = sigmaSchedulerTimesteps({ ...BASE, timestep_spacing: 'trailing' }, 48);
    expect(ts).toHaveLength(48);
    // numpy: np.arange(1000, 0, -1000/48).round() - 1 has 936 (not 937) at index 3, and 686, 436, 186
    expect([ts[3], ts[15], ts[27], ts[39]]).toEqual([936, 686, 436, 186]);
    expect(numpyArange(1000, 0, -1000 / 48)[3]).toBeLessThan(937.5);
    expect(ts[0]).toBe(999);
  });

  it('"leading" and "linspace" follow diffusers for odd step counts', () => {
    expect(sigmaSchedulerTimesteps(BASE, 7)).toEqual(
      [999, 832.5, 666, 499.5, 333, 166.5, 0].map(Math.fround),
    );
    expect(sigmaSchedulerTimesteps({ ...BASE, timestep_spacing: 'leading' }, 7)).toEqual([853, 711, 569, 427, 285, 143, 1]);
  });

  it('maps sigmas back to their training timesteps', () => {
    const train = trainingSigmas(BASE);
    for (const t of [0, 1, 250, 500.5, 998.25, 999]) {
      const lo = Math.floor(t);
      const frac = t - lo;
      const sigma = Math.exp((1 - frac) * train.logSigmas[lo]! + frac * train.logSigmas[Math.min(lo + 1, 999)]!);
      expect(sigmaToT(sigma, train.logSigmas)).toBeCloseTo(t, 3);
    }
    expect(sigmaToT(1e-6, train.logSigmas)).toBe(0);
    expect(sigmaToT(1e6, train.logSigmas)).toBe(999);
  });

  it('Euler Karras with config sigma_min/sigma_max reproduces k-diffusion get_sigmas_karras and its model t', () => {
    const kd = JSON.parse(readFileSync(join(REFERENCE, 'kdiffusion_karras.json'), 'utf8')) as {
      cases: { sigmas: number[]; sigma_min: string; sigma_max: string }[];
      cross_check: { epsilon: { kdiffusion_model_t: number[] } };
    };
    const ref = kd.cases[0]!;
    const s = new EulerDiscreteScheduler(
      { ...BASE, use_karras_sigmas: true, sigma_min: Number(ref.sigma_min), sigma_max: Number(ref.sigma_max) },
      10,
    );
    expectClose(s.sigmas, ref.sigmas, 'karras sigmas');
    expectClose(s.timesteps, kd.cross_check.epsilon.kdiffusion_model_t, 'karras model t');
    expect(karrasSigmas(0.1, 10, 1).map(Math.fround)).toEqual([10]);
  });

  it('Heun, DPM2 and LMS take Karras bounds like diffusers', () => {
    const config = { ...BASE, use_karras_sigmas: true };
    const inSigmas = new EulerDiscreteScheduler(BASE, 12).sigmas;
    const expected = karrasSigmas(inSigmas[11]!, inSigmas[0]!, 12).map(Math.fround);
    const heun = new HeunDiscreteScheduler(config, 12);
    const kdpm2 = new KDPM2DiscreteScheduler(config, 12);
    const lms = new LMSDiscreteScheduler(config, 12);
    expectClose(lms.sigmas, [...expected, 0], 'lms karras');
    expectClose(heun.sigmas.filter((_, i) => i === 0 || i % 2 === 1), [...expected, 0], 'heun karras');
    expectClose(kdpm2.sigmas.slice(0, -1).filter((_, i) => i === 0 || i % 2 === 1), [...expected, 0], 'kdpm2 karras');
    // DPM2 rounds the Karras timesteps to integers; LMS keeps them fractional
    expect(kdpm2.timesteps.filter((_, i) => i % 2 === 0).every(Number.isInteger)).toBe(true);
    expect(lms.timesteps.some((t) => !Number.isInteger(t))).toBe(true);
    // a config sigma_min/sigma_max moves Heun's and DPM2's bounds but not LMS's
    const bounded = { ...config, sigma_min: 0.1, sigma_max: 10 };
    expect(new HeunDiscreteScheduler(bounded, 12).sigmas[0]).toBe(10);
    expect(new KDPM2AncestralDiscreteScheduler(bounded, 12).sigmas[0]).toBe(10);
    expect(new LMSDiscreteScheduler(bounded, 12).sigmas[0]).toBe(Math.fround(inSigmas[0]!));
  });

  it('Euler honours final_sigmas_type, interpolation_type and timestep_type', () => {
    const train = trainingSigmas(BASE);
    const minFinal = new EulerDiscreteScheduler({ ...BASE, final_sigmas_type: 'sigma_min' }, 10);
    expect(minFinal.sigmas[10]).toBe(train.sigmas[0]);
    expect(() => new EulerDiscreteScheduler({ ...BASE, final_sigmas_type: 'half' }, 10)).toThrow(/final_sigmas_type/);
    const logLinear = new EulerDiscreteScheduler({ ...BASE, interpolation_type: 'log_linear' }, 10);
    // diffusers' log_linear has n+1 sigmas before the final one: geometric from sigma_max to sigma_min
    expect(logLinear.sigmas).toHaveLength(12);
    expectClose([logLinear.sigmas[0]!, logLinear.sigmas[10]!], [train.sigmas[999]!, train.sigmas[0]!], 'log_linear ends');
    const continuous = new EulerDiscreteScheduler({ ...BASE, prediction_type: 'v_prediction', timestep_type: 'continuous' }, 10);
    expectClose(continuous.timesteps, continuous.sigmas.slice(0, -1).map((s) => 0.25 * Math.log(s)), 'continuous t');
  });

  it('zero terminal SNR rescale: first alpha_bar kept, last alpha_bar 0, Euler sigma_max 4096', () => {
    const betas = new Float32Array(1000).map((_, i) => Math.fround((Math.sqrt(0.00085) + (i / 999) * (Math.sqrt(0.012) - Math.sqrt(0.00085))) ** 2));
    const rescaled = rescaleZeroTerminalSnr(betas);
    expect(rescaled[999]).toBe(1);
    expect(rescaled[0]).toBeCloseTo(betas[0]!, 6);
    const s = new EulerDiscreteScheduler({ ...BASE, rescale_betas_zero_snr: true, timestep_spacing: 'trailing' }, 10);
    expect(s.sigmas[0]).toBeCloseTo(Math.sqrt((1 - 2 ** -24) / 2 ** -24), 0);
    expect(s.initNoiseSigma).toBe(s.sigmas[0]);
  });

  it('LMS coefficients integrate the Lagrange basis exactly', () => {
    const sigmas = [14.6, 7.8, 4.6, 2.9, 1.95, 0];
    // order 1 is a plain Euler step; the basis sums to 1, so the coefficients sum to the sigma step
    expect(lmsCoefficient(sigmas, 1, 0, 0)).toBeCloseTo(7.8 - 14.6, 12);
    for (let i = 1; i < 5; i++) {
      const order = Math.min(i + 1, 4);
      let sum = 0;
      for (let j = 0; j < order; j++) sum += lmsCoefficient(sigmas, order, i, j);
      expect(sum).toBeCloseTo(sigmas[i + 1]! - sigmas[i]!, 12);
    }
    // two-step Adams-Bashforth-like weights on an even grid: ∫0^-1 of (tau - x1)/(x0 - x1) over nodes x0=1, x1=2
    expect(lmsCoefficient([2, 1, 0], 2, 1, 0)).toBeCloseTo(-1.5, 12);
    expect(lmsCoefficient([2, 1, 0], 2, 1, 1)).toBeCloseTo(0.5, 12);
  });

  it('rejects what diffusers rejects', () => {
    expect(() => new EulerAncestralDiscreteScheduler({ ...BASE, prediction_type: 'sample' }, 10)).toThrow(/sample/);
    expect(() => new KDPM2DiscreteScheduler({ ...BASE, prediction_type: 'sample' }, 10)).toThrow(/sample/);
    expect(() => new EulerDiscreteScheduler({ ...BASE, timestep_spacing: 'odd' as 'linspace' }, 10)).toThrow(/not supported/);
    expect(() => new LMSDiscreteScheduler({ ...BASE, beta_schedule: 'exp' as 'linear' }, 10)).toThrow(/beta_schedule/);
    expect(() => new HeunDiscreteScheduler({ ...BASE, beta_schedule: 'exp' as 'linear' }, 10)).not.toThrow();
    expect(() => new EulerDiscreteScheduler(BASE, 0)).toThrow(/positive/);
  });
});

describe('order-2 and multistep state', () => {
  it('a one-step schedule ends on the denoised estimate', () => {
    const x = new Float32Array([1, -2, 3, 0.5]);
    const eps = new Float32Array([0.1, 0.2, -0.3, 0]);
    for (const Ctor of Object.values(CLASSES)) {
      const s = new Ctor({ ...BASE, timestep_spacing: 'trailing' }, 1);
      expect(s.timesteps).toEqual([999]);
      const sigma = s.sigmas![0]!;
      const out = s.step(eps, 999, x, () => new Float32Array(4));
      expectClose(out, Array.from(x, (v, i) => v - sigma * eps[i]!), Ctor.name);
    }
  });

  it('DPM2 a draws step noise on every call, Euler a once per step, Heun / DPM2 / LMS never', () => {
    const counts: Record<string, number> = {};
    for (const Ctor of Object.values(CLASSES)) {
      const s = new Ctor(BASE, 5);
      let draws = 0;
      const noise = () => {
        draws++;
        return new Float32Array(4);
      };
      let x: Float32Array = new Float32Array([1, 2, 3, 4]);
      for (const t of s.timesteps) x = s.step(s.scaleModelInput(x, t), t, x, noise);
      counts[Ctor.name] = draws;
    }
    expect(counts).toEqual({
      EulerDiscreteScheduler: 5,
      EulerAncestralDiscreteScheduler: 5,
      HeunDiscreteScheduler: 0,
      KDPM2DiscreteScheduler: 0,
      KDPM2AncestralDiscreteScheduler: 9,
      LMSDiscreteScheduler: 0,
    });
  });

  it('the step index comes from the first timestep when no begin index is set', () => {
    const s = new EulerDiscreteScheduler(BASE, 10);
    const t = s.timesteps[4]!;
    const x = new Float32Array([2]);
    expectClose(s.scaleModelInput(x, t), [2 / Math.sqrt(s.sigmas[4]! ** 2 + 1)], 'scale at index 4');
    // add_noise before any step uses t's position; Heun's repeated timesteps pick the second occurrence
    const heun = new HeunDiscreteScheduler(BASE, 10);
    expect(heun.addNoise(new Float32Array([0]), new Float32Array([1]), heun.timesteps[1]!)[0]).toBe(heun.sigmas[2]);
  });
});
