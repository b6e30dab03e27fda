/**
 * The VP-form / multistep samplers against the diffusers 0.30.3 rollouts in test/fixtures/reference (README there):
 * each scheduler is fed the stored model outputs and must reproduce the timesteps (int64 exactly), sigmas, the
 * per-step x_in and x, and the img2img strength cases, within rtol 1e-4 / atol 1e-5.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Scheduler, SchedulerConfig } from '../../src/engine/sampling/scheduler.js';
import { TorchGenerator } from '../../src/engine/sampling/torch-rng.js';
import { trainingSigmas } from '../../src/engine/sampling/sigmas.js';
import { DDIMScheduler, ddimDefaults } from '../../src/engine/sampling/samplers/ddim.js';
import { DDPMScheduler, ddpmDefaults } from '../../src/engine/sampling/samplers/ddpm.js';
import { PNDMScheduler, pndmDefaults } from '../../src/engine/sampling/samplers/pndm.js';
import {
  DPMSolverMultistepScheduler,
  dpmSolverMultistepDefaults,
} from '../../src/engine/sampling/samplers/dpm-solver-multistep.js';
import {
  DPMSolverSinglestepScheduler,
  dpmSolverSinglestepDefaults,
} from '../../src/engine/sampling/samplers/dpm-solver-singlestep.js';
import { UniPCMultistepScheduler, unipcDefaults } from '../../src/engine/sampling/samplers/unipc.js';
import { DEISMultistepScheduler, deisDefaults } from '../../src/engine/sampling/samplers/deis.js';
import { LCMScheduler, lcmDefaults } from '../../src/engine/sampling/samplers/lcm.js';
import {
  FlowMatchEulerDiscreteScheduler,
  flowImg2ImgStart,
  flowMatchEulerDefaults,
} from '../../src/engine/sampling/samplers/flow-match-euler.js';
import { FlowDpmpp2mScheduler } from '../../src/engine/sampling/samplers/flow-dpmpp-2m.js';

const REF = join(import.meta.dirname, '..', 'fixtures', 'reference');
const RTOL = 1e-4;
const ATOL = 1e-5;

interface StepRecord {
  i: number;
  t: number;
  x_in: number[];
  model_out: number[];
  x: number[];
}

interface Img2ImgRecord {
  num_inference_steps: number;
  strength: number;
  t_start: number;
  begin_index: number | null;
  timesteps: number[];
  first_timestep: number;
  x0: number[];
  noise: number[];
  noised: number[];
  steps: StepRecord[];
}

interface SchedCase {
  variant: string;
  config: SchedulerConfig;
  prediction_type: string;
  timestep_spacing: string | null;
  num_inference_steps: number;
  seeds: { x: number; step_generator: number };
  set_timesteps: {
    timesteps: number[];
    timesteps_dtype: 'int64' | 'float32';
    sigmas?: number[];
    init_noise_sigma: number;
    order: number;
  };
  x_start: number[];
  steps: StepRecord[];
  img2img?: Img2ImgRecord[];
}

interface SchedFile {
  latent_shape: number[];
  cases: SchedCase[];
}

type Factory = (config: SchedulerConfig, steps: number) => Scheduler;

const f32 = (a: readonly number[]): Float32Array => Float32Array.from(a);

function loadSched(variant: string): SchedFile {
  return JSON.parse(readFileSync(join(REF, `sched_${variant}.json`), 'utf8')) as SchedFile;
}

/** Indices where |a - b| > atol + rtol |b| (b is the reference), with the worst one for the message. */
function mismatch(actual: ArrayLike<number>, expected: readonly number[]): string | null {
  if (actual.length !== expected.length) return `length ${actual.length} != ${expected.length}`;
  let bad = 0;
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < expected.length; i++) {
    const b = Math.fround(expected[i]!);
    const err = Math.abs(actual[i]! - b);
    if (!(err <= ATOL + RTOL * Math.abs(b))) {
      bad++;
      if (!(err <= worstErr)) {
        worstErr = err;
        worst = i;
      }
    }
  }
  return bad === 0 ? null : `${bad} values off, worst [${worst}] ${actual[worst]} vs ${expected[worst]} (err ${worstErr})`;
}

function expectClose(actual: ArrayLike<number>, expected: readonly number[], what: string): void {
  const m = mismatch(actual, expected);
  expect(m, `${what}: ${m}`).toBeNull();
}

function noiseSampler(seed: number, shape: readonly number[]): () => Float32Array {
  const g = new TorchGenerator(seed);
  return () => g.randn(shape);
}

/** The pipeline loop of the README over `timesteps`, fed the stored model outputs, checking every step. */
function rollout(
  s: Scheduler,
  timesteps: readonly number[],
  start: Float32Array,
  steps: readonly StepRecord[],
  seed: number,
  shape: number[],
  what: string,
): void {
  const noise = noiseSampler(seed, shape);
  let x = start;
  expect(steps.length).toBe(timesteps.length);
  steps.forEach((rec, k) => {
    const t = timesteps[k]!;
    expect(t, `${what} step ${k} t`).toBe(Math.fround(rec.t));
    expectClose(s.scaleModelInput(x, t), rec.x_in, `${what} step ${k} x_in`);
    x = s.step(f32(rec.model_out), t, x, noise);
    expectClose(x, rec.x, `${what} step ${k} x`);
  });
}

function checkSetTimesteps(s: Scheduler, c: SchedCase): void {
  const st = c.set_timesteps;
  expect(s.timestepsDtype).toBe(st.timesteps_dtype);
  if (st.timesteps_dtype === 'int64') expect([...s.timesteps]).toEqual(st.timesteps);
  else expectClose(s.timesteps, st.timesteps, 'timesteps');
  if (st.sigmas) expectClose(s.sigmas ?? [], st.sigmas, 'sigmas');
  expect(s.initNoiseSigma).toBe(st.init_noise_sigma);
  expect(s.order).toBe(st.order);
}

/** StableDiffusionImg2ImgPipeline.get_timesteps' start index (the SD3 pipeline's is flowImg2ImgStart). */
function sdImg2ImgStart(steps: number, strength: number): number {
  const initTimestep = Math.min(Math.trunc(steps * strength), steps);
  return Math.max(steps - initTimestep, 0);
}

/** The pipeline's get_timesteps + add_noise (README "img2img / strength"), then the sliced rollout. */
function checkImg2Img(v: Variant, c: SchedCase, r: Img2ImgRecord, shape: number[], what: string): void {
  const s = v.make(c.config, r.num_inference_steps);
  const tStart = (v.img2imgStart ?? sdImg2ImgStart)(r.num_inference_steps, r.strength);
  expect(tStart).toBe(r.t_start);
  const begin = tStart * s.order;
  const timesteps = s.timesteps.slice(begin);
  expect([...timesteps]).toEqual(r.timesteps.map(Math.fround));
  s.setBeginIndex(begin);
  const noised = s.addNoise(f32(r.x0), f32(r.noise), timesteps[0]!);
  expectClose(noised, r.noised, `${what} noised`);
  rollout(s, timesteps, noised, r.steps, c.seeds.step_generator, shape, `${what} img2img`);
}

interface Variant {
  variant: string;
  make: Factory;
  defaults: Record<string, unknown>;
  img2imgStart?: (steps: number, strength: number) => number;
}

/** Every key of the class defaults appears in the fixture's resolved config; both resolve to the same values. */
function checkResolvedConfig(resolved: Record<string, unknown>, c: SchedCase, defaults: Record<string, unknown>): void {
  for (const key of Object.keys(defaults)) {
    const want = (c.config as Record<string, unknown>)[key];
    if (want === undefined) continue;
    const got = resolved[key];
    if (want === '-inf') expect(got === -Infinity || got === '-inf', key).toBe(true);
    else expect(got ?? null, key).toEqual(want);
  }
}

function describeVariant(v: Variant): void {
  const file = loadSched(v.variant);
  describe(`sched_${v.variant}`, () => {
    for (const c of file.cases) {
      const what = `${v.variant} ${c.prediction_type}/${c.timestep_spacing}/${c.num_inference_steps}`;
      it(what, () => {
        const s = v.make(c.config, c.num_inference_steps);
        checkResolvedConfig((s as unknown as { config: Record<string, unknown> }).config, c, v.defaults);
        checkSetTimesteps(s, c);
        rollout(s, s.timesteps, f32(c.x_start), c.steps, c.seeds.step_generator, file.latent_shape, what);
        for (const r of c.img2img ?? []) checkImg2Img(v, c, r, file.latent_shape, what);
      });
    }
  });
}

const VARIANTS: Variant[] = [
  { variant: 'ddim', make: (c, n) => new DDIMScheduler(c, n), defaults: ddimDefaults },
  { variant: 'ddpm', make: (c, n) => new DDPMScheduler(c, n), defaults: ddpmDefaults },
  { variant: 'pndm', make: (c, n) => new PNDMScheduler(c, n), defaults: pndmDefaults },
  { variant: 'dpmpp_2m', make: (c, n) => new DPMSolverMultistepScheduler(c, n), defaults: dpmSolverMultistepDefaults },
  {
    variant: 'dpmpp_2m_karras',
    make: (c, n) => new DPMSolverMultistepScheduler(c, n),
    defaults: dpmSolverMultistepDefaults,
  },
  { variant: 'dpmpp_2m_sde', make: (c, n) => new DPMSolverMultistepScheduler(c, n), defaults: dpmSolverMultistepDefaults },
  {
    variant: 'dpm_singlestep',
    make: (c, n) => new DPMSolverSinglestepScheduler(c, n),
    defaults: dpmSolverSinglestepDefaults,
  },
  { variant: 'unipc', make: (c, n) => new UniPCMultistepScheduler(c, n), defaults: unipcDefaults },
  { variant: 'deis', make: (c, n) => new DEISMultistepScheduler(c, n), defaults: deisDefaults },
  { variant: 'lcm', make: (c, n) => new LCMScheduler(c, n), defaults: lcmDefaults },
  {
    variant: 'flow_match_euler',
    make: (c, n) => new FlowMatchEulerDiscreteScheduler(c, n),
    defaults: flowMatchEulerDefaults,
    img2imgStart: flowImg2ImgStart,
  },
];

for (const v of VARIANTS) describeVariant(v);

/** sd35_flow.json: Stability's sd3.5 sample_euler / sample_dpmpp_2m on the shift-3 flow schedule. */
interface Sd35Step {
  sigma: number;
  t: number;
  x: number[];
  model_out: number[];
  denoised: number[];
}

interface Sd35Case {
  sampler: string;
  shift: number;
  num_steps: number;
  sigmas: number[];
  x_start: number[];
  steps: Sd35Step[];
  x_final: number[];
}

describe('sd35_flow', () => {
  const file = JSON.parse(readFileSync(join(REF, 'sd35_flow.json'), 'utf8')) as { cases: Sd35Case[] };
  const makers: Record<string, Factory> = {
    sample_euler: (c, n) => new FlowMatchEulerDiscreteScheduler(c, n),
    sample_dpmpp_2m: (c, n) => new FlowDpmpp2mScheduler(c, n),
  };
  for (const c of file.cases) {
    it(c.sampler, () => {
      const make = makers[c.sampler];
      expect(make, c.sampler).toBeDefined();
      const s = make!({ num_train_timesteps: 1000, shift: c.shift } as unknown as SchedulerConfig, c.num_steps);
      expectClose(s.sigmas ?? [], c.sigmas, 'sigmas');
      const noise = noiseSampler(0, [64]);
      expectClose(s.timesteps, c.steps.map((r) => r.t), 'timesteps');
      let x = f32(c.x_start);
      c.steps.forEach((rec, k) => {
        expectClose(x, rec.x, `${c.sampler} step ${k} x`);
        x = s.step(f32(rec.model_out), s.timesteps[k]!, x, noise);
      });
      expectClose(x, c.x_final, `${c.sampler} x_final`);
    });
  }
});

/**
 * Any step count, spacing, order and prediction type: with an oracle model that knows x0 and the noise, an exact
 * solver keeps x_k = alpha_k x0 + sigma_k eps at every step (the higher-order terms vanish: the prediction is
 * constant), so its result is x0 when the schedule ends at sigma 0, or alpha x0 + sigma eps at its final sigma.
 */
describe('oracle model: exact at any step count', () => {
  const sd15 = {
    num_train_timesteps: 1000,
    beta_start: 0.00085,
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    trained_betas: null,
    prediction_type: 'epsilon',
    timestep_spacing: 'leading',
    steps_offset: 1,
    set_alpha_to_one: false,
    clip_sample: false,
  } as SchedulerConfig;
  /** A config for the constructors: sd15 with the case's keys on top. */
  const cfg = (extra: Record<string, unknown>): SchedulerConfig => ({ ...sd15, ...extra }) as SchedulerConfig;
  const x0 = new TorchGenerator(107).randn([1, 4, 8, 8]);
  const eps = new TorchGenerator(7).randn([1, 4, 8, 8]);
  const mix = (a: number, b: number): Float32Array => x0.map((v, i) => a * v + b * eps[i]!);
  const trainSigmas = trainingSigmas(sd15).sigmas;
  const trainingSigma = (t: number): number => trainSigmas[t]!;
  const vp = (sigma: number): [number, number] => [1 / Math.sqrt(sigma * sigma + 1), sigma / Math.sqrt(sigma * sigma + 1)];

  /** What the model returns for x at VP level (alpha, sigma): eps, v or x0, computed from x itself. */
  function oracle(x: Float32Array, alpha: number, sigma: number, prediction: string): Float32Array {
    return x.map((xi, i) => {
      const e = (xi - alpha * x0[i]!) / sigma;
      if (prediction === 'epsilon') return e;
      if (prediction === 'v_prediction') return alpha * e - sigma * x0[i]!;
      return x0[i]!;
    });
  }

  /** Runs a sigma-indexed VP solver from alpha_0 x0 + sigma_0 eps and checks every step against the oracle path. */
  function sigmaPath(s: Scheduler, prediction: string, what: string): void {
    const sig = s.sigmas!;
    let x = mix(...vp(sig[0]!));
    s.timesteps.forEach((t, k) => {
      const [a, b] = vp(sig[k]!);
      x = s.step(oracle(x, a, b, prediction), t, x, () => eps);
      const [a1, b1] = vp(sig[k + 1]!);
      expectClose(x, Array.from(mix(a1, b1)), `${what} step ${k}`);
    });
  }

  const STEPS = [1, 2, 3, 4, 7, 16, 25, 50];
  const PREDICTIONS = ['epsilon', 'v_prediction', 'sample'];
  const SPACINGS = ['leading', 'trailing', 'linspace'] as const;

  it('DPMSolverMultistep: orders 1-3, midpoint/heun, Karras/lu, final sigma zero/sigma_min, ODE algorithms', () => {
    for (const n of STEPS) {
      for (const timestep_spacing of SPACINGS) {
        for (const prediction_type of PREDICTIONS) {
          for (const extra of [
            {},
            { solver_order: 3 },
            { solver_order: 1 },
            { solver_type: 'heun', lower_order_final: false },
            { use_karras_sigmas: true, solver_order: 3 },
            { use_lu_lambdas: true },
            { final_sigmas_type: 'sigma_min', euler_at_final: true },
            { algorithm_type: 'dpmsolver', final_sigmas_type: 'sigma_min', solver_order: 3 },
            { algorithm_type: 'dpmsolver', final_sigmas_type: 'sigma_min', solver_type: 'heun' },
          ]) {
            const config = cfg({ timestep_spacing, prediction_type, ...extra });
            sigmaPath(new DPMSolverMultistepScheduler(config, n), prediction_type, `dpm ${JSON.stringify(extra)} ${n}`);
          }
        }
      }
    }
  });

  it('DPMSolverSinglestep, UniPC, DEIS: orders 1-3 and their variants', () => {
    for (const n of STEPS) {
      for (const prediction_type of PREDICTIONS) {
        for (const extra of [{}, { solver_order: 3 }, { solver_order: 3, solver_type: 'heun' }, { use_karras_sigmas: true }]) {
          // order 3 with n = 2 (mod 3) ends on a second-order step onto sigma 0, inf * 0 in diffusers too
          if (extra.solver_order === 3 && n % 3 === 2) continue;
          const config = cfg({ prediction_type, ...extra });
          sigmaPath(new DPMSolverSinglestepScheduler(config, n), prediction_type, `single ${JSON.stringify(extra)} ${n}`);
        }
        for (const timestep_spacing of SPACINGS) {
          for (const extra of [
            {},
            { solver_order: 3 },
            { solver_order: 3, solver_type: 'bh1' },
            // noise prediction onto sigma 0 multiplies 0 by expm1(inf): NaN in diffusers too, so end on sigma_min
            { predict_x0: false, solver_order: 3, final_sigmas_type: 'sigma_min' },
            { use_karras_sigmas: true, final_sigmas_type: 'sigma_min' },
            // (a higher-order step onto sigma 0 divides by r_k = 0, in diffusers too: lower_order_final exists for that)
            { disable_corrector: [0, 2], lower_order_final: false, final_sigmas_type: 'sigma_min' },
          ]) {
            const config = cfg({ timestep_spacing, prediction_type, ...extra });
            sigmaPath(new UniPCMultistepScheduler(config, n), prediction_type, `unipc ${JSON.stringify(extra)} ${n}`);
          }
          for (const extra of [{}, { solver_order: 3 }, { use_karras_sigmas: true, solver_order: 3 }]) {
            const config = cfg({ timestep_spacing, prediction_type, ...extra });
            sigmaPath(new DEISMultistepScheduler(config, n), prediction_type, `deis ${JSON.stringify(extra)} ${n}`);
          }
        }
      }
    }
  });

  // "trailing" can end on t >= T // n, whose step stops at alphas_cumprod[0] instead of the final alpha 1
  it('DDIM and PNDM (PLMS and PRK) reach x0 with set_alpha_to_one', () => {
    const acp = (t: number): number => 1 / (1 + trainingSigma(t) ** 2);
    for (const n of [4, 7, 16, 25, 50]) {
      for (const prediction_type of ['epsilon', 'v_prediction']) {
        const schedulers: Scheduler[] = [
          new DDIMScheduler(cfg({ prediction_type, set_alpha_to_one: true }), n),
          new DDIMScheduler(cfg({ prediction_type, set_alpha_to_one: true, timestep_spacing: 'linspace' }), n),
        ];
        // PLMS averages outputs of different steps: only a constant epsilon is exact for it
        if (prediction_type === 'epsilon') {
          schedulers.push(
            new PNDMScheduler(cfg({ set_alpha_to_one: true, skip_prk_steps: true }), n),
            new PNDMScheduler(cfg({ set_alpha_to_one: true, skip_prk_steps: false }), n),
          );
        }
        for (const s of schedulers) {
          const t0 = s.timesteps[0]!;
          let x = mix(Math.sqrt(acp(t0)), Math.sqrt(1 - acp(t0)));
          for (const t of s.timesteps) x = s.step(oracle(x, Math.sqrt(acp(t)), Math.sqrt(1 - acp(t)), prediction_type), t, x, () => eps);
          expectClose(x, Array.from(x0), `${s.constructor.name} ${prediction_type} ${n}`);
        }
      }
    }
  });

  it('flow Euler and flow DPM++ 2M reach x0 for a constant velocity', () => {
    for (const n of STEPS) {
      for (const s of [
        new FlowMatchEulerDiscreteScheduler({ shift: 3.0 }, n),
        new FlowDpmpp2mScheduler({ shift: 3.0 }, n),
        new FlowDpmpp2mScheduler({ shift: 1.0 }, n),
      ]) {
        const sig = s.sigmas;
        let x = mix(1 - sig[0]!, sig[0]!);
        const v = eps.map((e, i) => e - x0[i]!);
        s.timesteps.forEach((t, k) => {
          x = s.step(v, t, x, () => eps);
          expectClose(x, Array.from(mix(1 - sig[k + 1]!, sig[k + 1]!)), `${s.constructor.name} ${n} step ${k}`);
        });
      }
    }
  });
});

/**
 * The third-order updates have no reference rollout: check the coefficient algebra (outputs, not divided
 * differences) against diffusers' formulas written out literally in terms of D0, D1, D2, in float64.
 */
describe('third-order updates against the literal diffusers formulas', () => {
  const base = {
    num_train_timesteps: 1000,
    beta_start: 0.00085,
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    trained_betas: null,
    prediction_type: 'sample',
    timestep_spacing: 'linspace',
    steps_offset: 1,
    solver_order: 3,
  } as unknown as SchedulerConfig;
  const n = 9;
  const g = new TorchGenerator(3);
  const outs = Array.from({ length: n }, () => g.randn([64]));
  const start = new TorchGenerator(4).randn([64]);
  const level = (sigma: number): { a: number; s: number; l: number } => {
    const a = 1 / Math.sqrt(sigma * sigma + 1);
    return { a, s: sigma * a, l: Math.log(a) - Math.log(sigma * a) };
  };
  const combine = (terms: [number, ArrayLike<number>][]): Float64Array =>
    Float64Array.from({ length: 64 }, (_, i) => terms.reduce((acc, [c, v]) => acc + c * v[i]!, 0));
  const sub = (p: ArrayLike<number>, q: ArrayLike<number>): Float64Array => combine([[1, p], [-1, q]]);

  for (const algorithm_type of ['dpmsolver++', 'dpmsolver']) {
    it(`DPMSolverMultistep ${algorithm_type} order 3`, () => {
      const config = { ...base, algorithm_type, final_sigmas_type: 'sigma_min' } as SchedulerConfig;
      const s = new DPMSolverMultistepScheduler(config, n);
      const sig = s.sigmas!;
      // 'sample' prediction: dpmsolver++ keeps x0 = out; dpmsolver converts to eps = (x - alpha out) / sigma
      let x: ArrayLike<number> = start;
      const ms: ArrayLike<number>[] = [];
      s.timesteps.forEach((t, k) => {
        const [T, S0] = [level(sig[k + 1]!), level(sig[k]!)];
        ms.push(algorithm_type === 'dpmsolver++' ? outs[k]! : combine([[1 / S0.s, x], [-S0.a / S0.s, outs[k]!]]));
        const order = Math.min(k + 1, 3, k === n - 1 ? 1 : k === n - 2 ? 2 : 3);
        const h = T.l - S0.l;
        const pp = algorithm_type === 'dpmsolver++';
        const D0 = ms[k]!;
        let expected: Float64Array;
        const head: [number, ArrayLike<number>][] = pp
          ? [[T.s / S0.s, x], [-T.a * (Math.exp(-h) - 1), D0]]
          : [[T.a / S0.a, x], [-T.s * (Math.exp(h) - 1), D0]];
        if (order === 1) expected = combine(head);
        else if (order === 2) {
          const r0 = (S0.l - level(sig[k - 1]!).l) / h;
          const D1 = combine([[1 / r0, sub(ms[k]!, ms[k - 1]!)]]);
          expected = combine([...head, [pp ? -0.5 * T.a * (Math.exp(-h) - 1) : -0.5 * T.s * (Math.exp(h) - 1), D1]]);
        } else {
          const [S1, S2] = [level(sig[k - 1]!), level(sig[k - 2]!)];
          const r0 = (S0.l - S1.l) / h;
          const r1 = (S1.l - S2.l) / h;
          const D10 = combine([[1 / r0, sub(ms[k]!, ms[k - 1]!)]]);
          const D11 = combine([[1 / r1, sub(ms[k - 1]!, ms[k - 2]!)]]);
          const D1 = combine([[1, D10], [r0 / (r0 + r1), sub(D10, D11)]]);
          const D2 = combine([[1 / (r0 + r1), sub(D10, D11)]]);
          expected = pp
            ? combine([...head, [T.a * ((Math.exp(-h) - 1) / h + 1), D1], [-T.a * ((Math.exp(-h) - 1 + h) / h ** 2 - 0.5), D2]])
            : combine([...head, [-T.s * ((Math.exp(h) - 1) / h - 1), D1], [-T.s * ((Math.exp(h) - 1 - h) / h ** 2 - 0.5), D2]]);
        }
        x = s.step(outs[k]!, t, Float32Array.from(x), () => new Float32Array(64));
        expectClose(x, Array.from(expected), `${algorithm_type} step ${k} (order ${order})`);
      });
    });
  }

  for (const solver_type of ['midpoint', 'heun']) {
    it(`DPMSolverSinglestep dpmsolver++ order 3 ${solver_type}`, () => {
      const s = new DPMSolverSinglestepScheduler({ ...base, solver_type } as SchedulerConfig, n);
      const sig = s.sigmas!;
      const orders = [1, 2, 3, 1, 2, 3, 1, 2, 1];
      let x: ArrayLike<number> = start;
      let chunk: ArrayLike<number> = start;
      s.timesteps.forEach((t, k) => {
        const order = orders[k]!;
        if (order === 1) chunk = x;
        const T = level(sig[k + 1]!);
        const S = level(sig[k + 1 - order]!);
        const h = T.l - S.l;
        const head: [number, ArrayLike<number>][] = [[T.s / S.s, chunk], [-T.a * (Math.exp(-h) - 1), outs[k + 1 - order]!]];
        let expected: Float64Array;
        if (order === 1) expected = combine(head);
        else if (order === 2) {
          const r0 = (level(sig[k]!).l - S.l) / h;
          const D1 = combine([[1 / r0, sub(outs[k]!, outs[k - 1]!)]]);
          const w = solver_type === 'midpoint' ? -0.5 * T.a * (Math.exp(-h) - 1) : T.a * ((Math.exp(-h) - 1) / h + 1);
          expected = combine([...head, [w, D1]]);
        } else {
          const r0 = (level(sig[k]!).l - S.l) / h;
          const r1 = (level(sig[k - 1]!).l - S.l) / h;
          const D10 = combine([[1 / r1, sub(outs[k - 1]!, outs[k - 2]!)]]);
          const D11 = combine([[1 / r0, sub(outs[k]!, outs[k - 2]!)]]);
          const D1 = combine([[r0 / (r0 - r1), D10], [-r1 / (r0 - r1), D11]]);
          const D2 = combine([[2 / (r0 - r1), sub(D11, D10)]]);
          const w1 = T.a * ((Math.exp(-h) - 1) / h + 1);
          expected =
            solver_type === 'midpoint'
              ? combine([...head, [w1, D11]])
              : combine([...head, [w1, D1], [-T.a * ((Math.exp(-h) - 1 + h) / h ** 2 - 0.5), D2]]);
        }
        x = s.step(outs[k]!, t, Float32Array.from(x), () => new Float32Array(64));
        expectClose(x, Array.from(expected), `singlestep ${solver_type} step ${k} (order ${order})`);
      });
    });
  }
});

/**
 * int64 timesteps at other step counts, from a numpy transcription of diffusers 0.30.3's set_timesteps (Karras: on the
 * fixtures' float32 training sigmas with numpy 1.x promotion in _sigma_to_t). Keys: class/spacing/steps.
 */
const OTHER_STEP_COUNTS: Record<string, number[]> = {
  'ddim/trailing/7': [999,  856,  713,  570,  428,  285,  142],
  'ddim/linspace/25': [999,  957,  916,  874,  832,  791,  749,  708,  666,  624,  583,  541,  500,  458,  416,  375,  333,  291,  250,  208,  166,  125,  83,  42,  0],
  'pndm_skip/trailing/20': [999,  949,  949,  899,  849,  799,  749,  699,  649,  599,  549,  499,  449,  399,  349,  299,  249,  199,  149,  99,  49],
  'pndm_prk/leading/20': [951,  926,  926,  901,  901,  876,  876,  851,  851,  826,  826,  801,  801,  751,  701,  651,  601,  551,  501,  451,  401,  351,  301,  251,  201,  151,  101,  51,  1],
  'dpm/leading/25': [951,  913,  875,  837,  799,  761,  723,  685,  647,  609,  571,  533,  495,  457,  419,  381,  343,  305,  267,  229,  191,  153,  115,  77,  39],
  'dpm/trailing/7': [999,  856,  713,  570,  428,  285,  142],
  'dpm/linspace/50': [999,  979,  959,  939,  919,  899,  879,  859,  839,  819,  799,  779,  759,  739,  719,  699,  679,  659,  639,  619,  599,  579,  559,  539,  519,  500,  480,  460,  440,  420,  400,  380,  360,  340,  320,  300,  280,  260,  240,  220,  200,  180,  160,  140,  120,  100,  80,  60,  40,  20],
  'dpmk/leading/20': [999,  962,  921,  876,  827,  772,  710,  640,  561,  474,  380,  285,  197,  123,  69,  35,  15,  6,  2,  0],
  'dpmk/leading/50': [999,  985,  970,  955,  940,  924,  907,  890,  871,  853,  833,  813,  791,  769,  746,  721,  696,  669,  641,  612,  581,  549,  516,  481,  446,  409,  372,  335,  299,  263,  228,  195,  165,  137,  112,  90,  71,  55,  42,  32,  23,  17,  12,  8,  6,  4,  2,  1,  1,  0],
  'dpmlu/leading/16': [999,  927,  847,  757,  654,  538,  413,  290,  183,  103,  52,  24,  11,  4,  1,  0],
  'single/25': [999,  959,  919,  879,  839,  799,  759,  719,  679,  639,  599,  559,  519,  480,  440,  400,  360,  320,  280,  240,  200,  160,  120,  80,  40],
  'lcm/4/0.5': [499,  379,  259,  139],
  'lcm/6/1': [999,  839,  679,  499,  339,  179],
  'lcm/8/0.3': [299,  279,  239,  199,  159,  119,  79,  39],
};

describe('timesteps at other step counts', () => {
  const sd15 = {
    num_train_timesteps: 1000,
    beta_start: 0.00085,
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    trained_betas: null,
    prediction_type: 'epsilon',
    timestep_spacing: 'leading',
    steps_offset: 1,
    set_alpha_to_one: false,
    clip_sample: false,
  } as SchedulerConfig;
  const build: Record<string, (spacing: string, n: number, extra: number) => Scheduler> = {
    ddim: (sp, n) => new DDIMScheduler({ ...sd15, timestep_spacing: sp } as SchedulerConfig, n),
    pndm_skip: (sp, n) => new PNDMScheduler({ ...sd15, timestep_spacing: sp, skip_prk_steps: true } as SchedulerConfig, n),
    pndm_prk: (sp, n) => new PNDMScheduler({ ...sd15, timestep_spacing: sp, skip_prk_steps: false } as SchedulerConfig, n),
    dpm: (sp, n) => new DPMSolverMultistepScheduler({ ...sd15, timestep_spacing: sp } as SchedulerConfig, n),
    dpmk: (sp, n) =>
      new DPMSolverMultistepScheduler({ ...sd15, timestep_spacing: sp, use_karras_sigmas: true } as SchedulerConfig, n),
    dpmlu: (sp, n) =>
      new DPMSolverMultistepScheduler({ ...sd15, timestep_spacing: sp, use_lu_lambdas: true } as SchedulerConfig, n),
    single: (_sp, n) => new DPMSolverSinglestepScheduler(sd15, n),
    lcm: (_sp, n, strength) => new LCMScheduler(sd15, n, { strength }),
  };
  for (const [key, want] of Object.entries(OTHER_STEP_COUNTS)) {
    it(key, () => {
      const parts = key.split('/');
      const [cls, a, b] = parts as [string, string, string | undefined];
      const s =
        cls === 'single'
          ? build.single!('', Number(a), 0)
          : cls === 'lcm'
            ? build.lcm!('', Number(a), Number(b))
            : build[cls]!(a, Number(b), 0);
      expect([...s.timesteps]).toEqual(want);
    });
  }
});
