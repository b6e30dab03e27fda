/**
 * Every sampler of SAMPLER_TABLE, built through the engine's factory (createScheduler + img2imgTimesteps, as the
 * pipelines do), against diffusers 0.30.3 over the grid of test/fixtures/reference/sched_sweep.json
 * (scripts/fixtures/gen_sched_sweep.py): prediction type x spacing x Karras x steps_offset x {1,2,3,7,50} steps on
 * real-repo folder configs, img2img starts at strength 0.3 / 0.75, and the flow scheduler. Same loop, synthetic model
 * and tolerances as the public sched_<variant>.json traces (samplers-sigma.test.ts), chained on our own latents.
 * Where diffusers raises, the engine must refuse as well (or, for latents diffusers turns non-finite, do the same).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SamplerName, ScheduleName } from '../../src/queue/job.js';
import { SAMPLER_TABLE, createScheduler, effectiveConfig, img2imgTimesteps } from '../../src/engine/sampling/index.js';
import type { Scheduler } from '../../src/engine/sampling/scheduler.js';
import { flowImg2ImgStart } from '../../src/engine/sampling/samplers/flow-match-euler.js';
import { TorchGenerator } from '../../src/engine/sampling/torch-rng.js';

const SWEEP = join(import.meta.dirname, '..', 'fixtures', 'reference', 'sched_sweep.json');
const ATOL = 1e-5;
/** The generator handed to step() is seeded with x_seed + 1000. */
const STEP_SEED_OFFSET = 1000;
const RTOL = 1e-4;

interface StoredStep {
  i: number;
  t: number;
  x: number[];
  x_in?: number[];
  /** max |x - x_float64|: how far diffusers' own float32 arithmetic is from the float64 rerun of the same loop. */
  err?: number;
}
interface RefError {
  type: string;
  message: string;
}
interface Txt2ImgCase {
  steps: number;
  x_seed: number;
  error?: RefError;
  set_timesteps?: { timesteps: (number | null)[]; timesteps_dtype: string; init_noise_sigma: number; order: number; sigmas?: (number | null)[] };
  steps_out?: StoredStep[];
}
interface Img2ImgCase {
  steps: number;
  strength: number;
  x_seed: number;
  error?: RefError;
  begin_index?: number | null;
  /** Absent where it is the tail of the same step count's txt2img timesteps from begin_index. */
  timesteps?: (number | null)[];
  /** Only in the 7 steps x 0.75 case. */
  noised?: number[];
  steps_out?: StoredStep[];
}
interface Combo {
  sampler: SamplerName;
  class: string;
  folder: string;
  schedule: ScheduleName;
  prediction_type?: string;
  timestep_spacing?: string;
  steps_offset?: number;
  config: Record<string, unknown>;
  txt2img: Txt2ImgCase[];
  img2img: Img2ImgCase[];
}
interface Sweep {
  latent_shape: number[];
  x0_seed: number;
  folders: Record<string, Record<string, unknown>>;
  combos: Combo[];
}

const sweep = JSON.parse(readFileSync(SWEEP, 'utf8')) as Sweep;
const SHAPE = sweep.latent_shape;

/** null in the reference = a non-finite value there (JSON has no NaN/Infinity). */
function firstMismatch(actual: ArrayLike<number>, expected: ArrayLike<number | null>, slack = 0): string | null {
  if (actual.length !== expected.length) return `length ${actual.length} != ${expected.length}`;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i];
    if (e === null || e === undefined) {
      if (Number.isFinite(a)) return `[${i}]: got ${a}, expected a non-finite value`;
      continue;
    }
    const b = Math.fround(e);
    if (!(Math.abs(a - b) <= ATOL + RTOL * Math.abs(b) + slack)) return `[${i}]: got ${a}, expected ${b}`;
  }
  return null;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number | null>, what: string, slack = 0): void {
  const bad = firstMismatch(actual, expected, slack);
  if (bad) expect.fail(`${what}${bad}`);
}

/** The fixtures' synthetic model, float32: 0.5 * tanh(x) + 0.1 * cos(x * (1 + t/1000)). */
function syntheticModel(xIn: Float32Array, t: number): Float32Array {
  const f = Math.fround(1 + t / 1000);
  return xIn.map((x) => Math.fround(Math.fround(0.5 * Math.fround(Math.tanh(x))) + Math.fround(0.1 * Math.fround(Math.cos(Math.fround(x * f))))));
}

function folderOf(c: Combo): Record<string, unknown> {
  const folder = { ...sweep.folders[c.folder]! };
  if (c.prediction_type !== undefined) folder['prediction_type'] = c.prediction_type;
  if (c.timestep_spacing !== undefined) folder['timestep_spacing'] = c.timestep_spacing;
  if (c.steps_offset !== undefined) folder['steps_offset'] = c.steps_offset;
  return folder;
}

function build(c: Combo, steps: number, seed: number, strength?: number): Scheduler {
  return createScheduler({
    sampler: c.sampler,
    schedule: c.schedule,
    folderConfig: folderOf(c),
    steps,
    seeds: [BigInt(seed)],
    ...(strength === undefined ? {} : { strength }),
  });
}

/** The diffusers loop from `start`; returns the latents after each call (and x_in of the first). */
function rollout(s: Scheduler, timesteps: readonly number[], start: Float32Array, stepSeed: number): { xs: Float32Array[]; xIn0: Float32Array } {
  const g = new TorchGenerator(stepSeed);
  const noise = (): Float32Array => g.randn(SHAPE);
  let x = start;
  const xs: Float32Array[] = [];
  let xIn0 = new Float32Array(0);
  timesteps.forEach((t, i) => {
    const xIn = s.scaleModelInput(x, t);
    if (i === 0) xIn0 = Float32Array.from(xIn);
    x = s.step(syntheticModel(xIn, t), t, x, noise);
    xs.push(Float32Array.from(x));
  });
  return { xs, xIn0 };
}

function checkSteps(label: string, timesteps: readonly number[], got: { xs: Float32Array[]; xIn0: Float32Array }, ref: StoredStep[]): void {
  expect(got.xs.length, `${label}: model calls`).toBe(timesteps.length);
  for (const r of ref) {
    expect(Math.abs(timesteps[r.i]! - r.t), `${label} step ${r.i}: t ${timesteps[r.i]} vs ${r.t}`).toBeLessThanOrEqual(ATOL + RTOL * Math.abs(r.t));
    if (r.x_in) expectClose(got.xIn0, r.x_in, `${label} step ${r.i} x_in`);
    // Schedules with a huge sigma_max (squaredcos_cap_v2, zero SNR, linear LDM betas at t=999) cancel many digits:
    // there diffusers' float32 result is itself `err` away from the float64 rerun, and ours (float64 within a step,
    // float32 latents between steps, as any engine keeps them) rounds differently by about as much: allow 4 * err.
    // Well-conditioned cases have err ~1e-7 and keep the plain tolerance.
    expectClose(got.xs[r.i]!, r.x, `${label} step ${r.i} x`, 4 * (r.err ?? 0));
  }
}

/** diffusers raised: the engine must throw a readable message, or (diffusers' latents went non-finite) do the same. */
function expectRefused(run: () => Float32Array[], ref: RefError, label: string): void {
  let out: Float32Array[] | null = null;
  let err: unknown = null;
  try {
    out = run();
  } catch (e) {
    err = e;
  }
  if (ref.type === 'FloatingPointError' && out) {
    expect(out.some((x) => x.some((v) => !Number.isFinite(v))), `${label}: diffusers' latents go non-finite, ours stay finite`).toBe(true);
    return;
  }
  expect(err, `${label}: diffusers raises ${ref.type} (${ref.message}); the engine ran`).toBeInstanceOf(Error);
  expect((err as Error).message.length, `${label}: error message`).toBeGreaterThan(10);
}

function comboLabel(c: Combo): string {
  return [c.sampler, c.folder, c.prediction_type, c.timestep_spacing, c.schedule, c.steps_offset === undefined ? '' : `offset ${c.steps_offset}`]
    .filter(Boolean)
    .join(' ');
}

for (const c of sweep.combos) {
  describe(comboLabel(c), () => {
    it('effective config = diffusers from_config', () => {
      const folder = folderOf(c);
      const overrides = c.schedule === 'karras' ? { use_karras_sigmas: true } : {};
      const spec = effectiveConfig(c.class, folder, { ...overrides, ...samplerOverrides(c) });
      const ref = { ...c.config };
      // the generator names DPM++ SDE's Brownian seed in the config; the engine takes the image seeds instead
      if (c.class === 'DPMSolverSDEScheduler') delete ref['noise_sampler_seed'];
      const ours = { ...spec } as Record<string, unknown>;
      delete ours['noise_sampler_seed'];
      for (const key of Object.keys(ref)) {
        // JSON has no -inf (DPM-Solver's lambda_min_clipped default): the generator wrote null
        if (ref[key] === null && typeof ours[key] === 'number') expect(Number.isFinite(ours[key]), key).toBe(false);
        else expect(ours[key], key).toEqual(ref[key]);
      }
    });

    for (const tc of c.txt2img) {
      it(`txt2img ${tc.steps} steps`, () => {
        const label = `${comboLabel(c)} ${tc.steps} steps`;
        if (tc.error) {
          expectRefused(() => {
            const s = build(c, tc.steps, tc.x_seed);
            const start = new TorchGenerator(tc.x_seed).randn(SHAPE).map((v) => v * s.initNoiseSigma);
            return rollout(s, s.timesteps, start, tc.x_seed + STEP_SEED_OFFSET).xs;
          }, tc.error, label);
          return;
        }
        const ref = tc.set_timesteps!;
        const s = build(c, tc.steps, tc.x_seed);
        if (ref.timesteps_dtype === 'int64') expect([...s.timesteps], `${label} timesteps`).toEqual(ref.timesteps);
        else expectClose(s.timesteps, ref.timesteps, `${label} timesteps`);
        if (ref.sigmas) expectClose(s.sigmas ?? [], ref.sigmas, `${label} sigmas`);
        expectClose([s.initNoiseSigma], [ref.init_noise_sigma], `${label} init_noise_sigma`);
        expect(s.order, `${label} order`).toBe(ref.order);
        const start = new TorchGenerator(tc.x_seed).randn(SHAPE).map((v) => v * s.initNoiseSigma);
        checkSteps(label, s.timesteps, rollout(s, s.timesteps, start, tc.x_seed + STEP_SEED_OFFSET), tc.steps_out!);
      });
    }

    for (const ic of c.img2img) {
      it(`img2img ${ic.steps} steps strength ${ic.strength}`, () => {
        const label = `${comboLabel(c)} img2img ${ic.steps} x ${ic.strength}`;
        const run = (): { s: Scheduler; timesteps: number[] } => {
          const s = build(c, ic.steps, ic.x_seed, ic.strength);
          if (c.class === 'FlowMatchEulerDiscreteScheduler') {
            const begin = flowImg2ImgStart(ic.steps, ic.strength) * s.order;
            const timesteps = s.timesteps.slice(begin);
            if (timesteps.length === 0) throw new Error('no denoising step left');
            s.setBeginIndex(begin);
            return { s, timesteps };
          }
          return { s, timesteps: img2imgTimesteps(s, ic.steps, ic.strength).timesteps };
        };
        const x0 = new TorchGenerator(sweep.x0_seed).randn(SHAPE);
        const noise = new TorchGenerator(ic.x_seed).randn(SHAPE);
        if (ic.error) {
          expectRefused(() => {
            const { s, timesteps } = run();
            return rollout(s, timesteps, s.addNoise(x0, noise, timesteps[0]!), ic.x_seed + STEP_SEED_OFFSET).xs;
          }, ic.error, label);
          return;
        }
        const { s, timesteps } = run();
        // the file leaves out img2img timesteps that are the txt2img schedule's tail from begin_index
        const full = c.txt2img.find((tc) => tc.steps === ic.steps)?.set_timesteps?.timesteps;
        const expected = ic.timesteps ?? full?.slice(ic.begin_index ?? 0);
        expect(expected, `${label}: reference timesteps`).toBeDefined();
        expectClose(timesteps, expected!, `${label} timesteps`);
        const noised = s.addNoise(x0, noise, timesteps[0]!);
        if (ic.noised) expectClose(noised, ic.noised, `${label} noised`);
        checkSteps(label, timesteps, rollout(s, timesteps, noised, ic.x_seed + STEP_SEED_OFFSET), ic.steps_out!);
      });
    }
  });
}

function samplerOverrides(c: Combo): Record<string, unknown> {
  return SAMPLER_TABLE.find((s) => s.name === c.sampler)?.overrides ?? {};
}

describe('Karras on a class without use_karras_sigmas', () => {
  // diffusers' from_config ignores the unknown key (a warning) and runs the default schedule; the engine refuses, so
  // `--schedule karras` never silently means the default one
  const withKarras = new Set(sweep.combos.filter((c) => c.schedule === 'karras').map((c) => c.sampler));
  for (const spec of SAMPLER_TABLE.filter((s) => !withKarras.has(s.name) && s.name !== 'flow_dpmpp_2m')) {
    it(`${spec.name} refuses it`, () => {
      expect(() => createScheduler({ sampler: spec.name, schedule: 'karras', folderConfig: sweep.folders['sd15']!, steps: 10, seeds: [1n] })).toThrow(
        /no Karras schedule/,
      );
    });
  }
});
