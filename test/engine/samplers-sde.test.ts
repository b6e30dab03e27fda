/**
 * DPM++ SDE against test/fixtures/reference/sched_dpmpp_sde.json (scripts/fixtures/gen_sde_trace.py: diffusers 0.30.3
 * DPMSolverSDEScheduler on torchsde 0.2.6, torch 1.13 CPU): its building blocks bit for bit (torch's float32
 * exp/log, numpy's SeedSequence, Python's round(x, 6), torchsde's BrownianTree), then the schedules, every Brownian
 * noise the scheduler draws, and every scale_model_input / step of txt2img and img2img rollouts fed the stored model
 * outputs and chained on our own latents.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createScheduler, effectiveConfig, img2imgTimesteps } from '../../src/engine/sampling/index.js';
import { BrownianTree, BrownianTreeNoiseSampler, pyRound6 } from '../../src/engine/sampling/brownian-tree.js';
import { DPMSolverSDEScheduler } from '../../src/engine/sampling/samplers/dpm-solver-sde.js';
import type { SchedulerConfig } from '../../src/engine/sampling/scheduler.js';
import { torchLinspaceF32 } from '../../src/engine/sampling/noise-schedule.js';
import { SeedSequence } from '../../src/engine/sampling/seed-sequence.js';
import { torchExpF32, torchLogF32 } from '../../src/engine/sampling/sleef-f32.js';

const TRACE = join(import.meta.dirname, '..', 'fixtures', 'reference', 'sched_dpmpp_sde.json');
const ATOL = 1e-5;
const RTOL = 1e-4;

interface TraceStep {
  i: number;
  t: number;
  x_in: number[];
  model_out: number[];
  x: number[];
}
interface BrownianCall {
  sigma: number;
  sigma_next: number;
  noise: number[];
}
interface Brownian {
  tree: { sigma_min: number; sigma_max: number; shape: number[] };
  calls: BrownianCall[];
}
interface TraceCase {
  config: SchedulerConfig;
  prediction_type: string;
  timestep_spacing: string;
  use_karras_sigmas: boolean;
  num_inference_steps: number;
  shape: number[];
  /** decimal strings (2^64 - 1 does not survive JSON.parse as a number) */
  seeds: { x: number; noise_sampler_seed: string | string[] };
  set_timesteps: { timesteps: number[]; timesteps_dtype: string; sigmas: number[]; init_noise_sigma: number; order: number };
  noise: number[];
  x_start: number[];
  steps: TraceStep[];
  brownian: Brownian;
  img2img: {
    num_inference_steps: number;
    strength: number;
    t_start: number;
    begin_index: number;
    timesteps: number[];
    first_timestep: number;
    x0: number[];
    noise: number[];
    noised: number[];
    steps: TraceStep[];
    brownian: Brownian;
  }[];
}
interface Trace {
  torch_f32_math: Record<'exp' | 'log', { x: number[]; y: number[] }>;
  seed_sequence: { entropy: string; spawn_key: string[]; pool_size: number; state: number[] }[];
  torch_linspace: { start: number; end: number; steps: number; values: number[] }[];
  round6: { x: number; r: number }[];
  tree: { t0: number; t1: number; shape: number[]; entropy: number; queries: { ta: number; tb: number; w: number[] }[] };
  cases: TraceCase[];
}

const trace = JSON.parse(readFileSync(TRACE, 'utf8')) as Trace;
const f32 = Math.fround;

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const b = f32(expected[i]!);
    if (!(Math.abs(a - b) <= ATOL + RTOL * Math.abs(b))) expect.fail(`${what}[${i}]: got ${a}, expected ${b}`);
  }
}

/** Same float32 values, bit for bit. */
function expectExact(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], f32(expected[i]!))) expect.fail(`${what}[${i}]: got ${actual[i]}, expected ${f32(expected[i]!)}`);
  }
}

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
const noNoise = (): Float32Array => {
  throw new Error('DPM++ SDE must not draw from the pipeline generators');
};

describe('DPM++ SDE building blocks', () => {
  for (const name of ['exp', 'log'] as const) {
    it(`torch float32 ${name} (SLEEF u10), including the inputs where it is not correctly rounded`, () => {
      const { x, y } = trace.torch_f32_math[name];
      const fn = name === 'exp' ? torchExpF32 : torchLogF32;
      expectExact(x.map((v) => fn(f32(v))), y, name);
      // the table is chosen so that the correctly rounded function fails on it
      const naive = x.map((v) => f32(name === 'exp' ? Math.exp(f32(v)) : Math.log(f32(v))));
      expect(naive.filter((v, i) => v !== f32(y[i]!)).length).toBeGreaterThan(100);
    });
  }

  it('torch.linspace float32 (the betas; the tree range is sigma_max, so it must be exact)', () => {
    for (const r of trace.torch_linspace) expectExact(torchLinspaceF32(r.start, r.end, r.steps), r.values, `linspace(${r.start}, ${r.end}, ${r.steps})`);
  });

  it("numpy SeedSequence(entropy, spawn_key, pool_size).generate_state", () => {
    for (const row of trace.seed_sequence) {
      const ss = new SeedSequence(BigInt(row.entropy), { spawnKey: row.spawn_key.map(BigInt), poolSize: row.pool_size });
      expect(ss.generateState(row.state.length), JSON.stringify(row)).toEqual(row.state);
    }
  });

  it("Python round(x, 6), ties to even on the exact binary value", () => {
    for (const { x, r } of trace.round6) expect(pyRound6(x), String(x)).toBe(r);
  });

  it('torchsde BrownianTree increments, queried in order on one tree', () => {
    const q = trace.tree;
    const tree = new BrownianTree(f32(q.t0), f32(q.t1), numel(q.shape), BigInt(q.entropy));
    for (const { ta, tb, w } of q.queries) expectExact(tree.increment(f32(ta), f32(tb)), w, `W(${ta}, ${tb})`);
  });

  it('a tree answers the same whatever the query order (halfway tree)', () => {
    const q = trace.tree;
    const tree = new BrownianTree(f32(q.t0), f32(q.t1), numel(q.shape), BigInt(q.entropy));
    for (const { ta, tb, w } of [...q.queries].reverse()) expectExact(tree.increment(f32(ta), f32(tb)), w, `W(${ta}, ${tb})`);
  });
});

/** The diffusers loop from `start` over `timesteps`, checking x_in, x and every Brownian noise drawn. */
function rollout(s: DPMSolverSDEScheduler, timesteps: readonly number[], start: Float32Array, steps: TraceStep[], brownian: Brownian, label: string): void {
  const calls: { sigma: number; sigmaNext: number; noise: Float32Array }[] = [];
  const original = BrownianTreeNoiseSampler.prototype.sample;
  const spy = function (this: BrownianTreeNoiseSampler, sigma: number, sigmaNext: number): Float32Array {
    const noise = original.call(this, sigma, sigmaNext);
    calls.push({ sigma, sigmaNext, noise });
    return noise;
  };
  BrownianTreeNoiseSampler.prototype.sample = spy;
  try {
    let x = start;
    expect(steps).toHaveLength(timesteps.length);
    for (const ref of steps) {
      const t = timesteps[ref.i]!;
      expect(Math.abs(t - ref.t), `${label} step ${ref.i}: t`).toBeLessThanOrEqual(ATOL + RTOL * Math.abs(ref.t));
      const xIn = s.scaleModelInput(x, t);
      expectClose(xIn, ref.x_in, `${label} step ${ref.i} x_in`);
      x = s.step(Float32Array.from(ref.model_out), t, x, noNoise);
      expectClose(x, ref.x, `${label} step ${ref.i} x`);
    }
  } finally {
    BrownianTreeNoiseSampler.prototype.sample = original;
  }
  expect(calls).toHaveLength(brownian.calls.length);
  brownian.calls.forEach((ref, k) => {
    expect([calls[k]!.sigma, calls[k]!.sigmaNext], `${label} noise call ${k}: sigmas`).toEqual([f32(ref.sigma), f32(ref.sigma_next)]);
    expectExact(calls[k]!.noise, ref.noise, `${label} noise call ${k}`);
  });
}

/** The case's config with its noise_sampler_seed exact (as BigInt). */
function caseConfig(c: TraceCase): SchedulerConfig {
  const seed = c.seeds.noise_sampler_seed;
  return { ...c.config, noise_sampler_seed: Array.isArray(seed) ? seed.map(BigInt) : BigInt(seed) };
}

describe('sched_dpmpp_sde', () => {
  for (const c of trace.cases) {
    const seed = JSON.stringify(c.seeds.noise_sampler_seed);
    const label = `${c.prediction_type} ${c.timestep_spacing}${c.use_karras_sigmas ? ' karras' : ''} ${c.num_inference_steps} steps [${c.shape}] seed ${seed}`;
    it(`${label}: schedule`, () => {
      const s = new DPMSolverSDEScheduler(caseConfig(c), c.num_inference_steps);
      expect(c.set_timesteps.timesteps_dtype).toBe('float64');
      expectClose(s.timesteps, c.set_timesteps.timesteps, `${label} timesteps`);
      expectExact(s.sigmas, c.set_timesteps.sigmas, `${label} sigmas`);
      expectExact([s.initNoiseSigma], [c.set_timesteps.init_noise_sigma], `${label} init_noise_sigma`);
      expect(s.order).toBe(c.set_timesteps.order);
    });
    it(`${label}: txt2img rollout`, () => {
      const s = new DPMSolverSDEScheduler(caseConfig(c), c.num_inference_steps);
      const start = Float32Array.from(c.noise, (v) => f32(v) * s.initNoiseSigma);
      expectExact(start, c.x_start, `${label} x_start`);
      rollout(s, s.timesteps, start, c.steps, c.brownian, label);
    });
    for (const im of c.img2img) {
      it(`${label}: img2img strength ${im.strength}`, () => {
        const s = new DPMSolverSDEScheduler(caseConfig(c), im.num_inference_steps);
        const { timesteps, tStart, beginIndex } = img2imgTimesteps(s, im.num_inference_steps, im.strength);
        expect(beginIndex).toBe(im.begin_index);
        expectClose(timesteps, im.timesteps, `${label} img2img timesteps`);
        expectClose([tStart], [im.first_timestep], `${label} first timestep`);
        const noised = s.addNoise(Float32Array.from(im.x0), Float32Array.from(im.noise), tStart);
        expectClose(noised, im.noised, `${label} noised`);
        rollout(s, timesteps, noised, im.steps, im.brownian, `${label} img2img`);
      });
    }
  }
});

describe('dpmpp_sde in the sampler factory', () => {
  const folder = { _class_name: 'PNDMScheduler', num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', steps_offset: 1, skip_prk_steps: true };

  it('builds DPMSolverSDEScheduler with the folder keys, karras on request', () => {
    const config = effectiveConfig('DPMSolverSDEScheduler', folder, { use_karras_sigmas: true });
    expect(config['noise_sampler_seed']).toBeNull();
    expect(config['timestep_spacing']).toBe('linspace');
    const s = createScheduler({ sampler: 'dpmpp_sde', schedule: 'karras', folderConfig: folder, steps: 12, seeds: [100n, 101n] });
    expect(s).toBeInstanceOf(DPMSolverSDEScheduler);
    const ref = trace.cases.find((c) => c.use_karras_sigmas && c.num_inference_steps === 12 && c.timestep_spacing === 'linspace')!;
    expectExact(s.sigmas!, ref.set_timesteps.sigmas, 'karras sigmas');
  });

  it('without a noise_sampler_seed, image i gets a tree of its own seeded with seed + i', () => {
    const c = trace.cases.find((k) => Array.isArray(k.seeds.noise_sampler_seed))!;
    const seeds = (c.seeds.noise_sampler_seed as string[]).map(BigInt);
    const config = { ...c.config, noise_sampler_seed: null };
    const s = new DPMSolverSDEScheduler(config, c.num_inference_steps, seeds);
    const start = Float32Array.from(c.noise, (v) => f32(v) * s.initNoiseSigma);
    rollout(s, s.timesteps, start, c.steps, c.brownian, 'image seeds');
    expect(() => new DPMSolverSDEScheduler(config, 10)).toThrow(/noise_sampler_seed/);
  });
});

describe('Brownian tree limits', () => {
  it('refuses two query times that round to the same microsecond (torchsde recurses forever there)', () => {
    const tree = new BrownianTree(f32(0.03), f32(14.6), 16, 1n);
    expect(() => tree.increment(1.0000001, 1.0000003)).toThrow(/1e-6 resolution/);
    expect(tree.increment(2, 2)).toEqual(new Float32Array(16));
  });
});

describe('Brownian tree cache', () => {
  // A node's increment does not depend on what was cached or evicted before; a tree that has evicted and reused
  // hundreds of buffers must still answer every query as a fresh tree does.
  it('answers as a fresh tree after many evictions and reused buffers', () => {
    const [t0, t1] = [f32(0.03), f32(14.6)];
    const long = new BrownianTree(t0, t1, 32, 7n);
    let s = 12345;
    const rand = (): number => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return t0 + (s / 2 ** 32) * (t1 - t0);
    };
    for (let q = 0; q < 400; q++) {
      const [a, b] = [rand(), rand()].sort((x, y) => x - y) as [number, number];
      if (pyRound6(a) === pyRound6(b)) continue;
      expect(Array.from(long.increment(a, b)), `query ${q}`).toEqual(Array.from(new BrownianTree(t0, t1, 32, 7n).increment(a, b)));
    }
  });
});
