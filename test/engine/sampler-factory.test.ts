/**
 * The sampler factory: diffusers' from_config resolution against the effective configs the reference recorded
 * (pipeline cases in test/fixtures/models, scheduler traces in test/fixtures/reference), the sampler table, schedule
 * handling and the img2img timestep slicing.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  SAMPLER_TABLE,
  createScheduler,
  effectiveConfig,
  img2imgTimesteps,
  supportedClasses,
} from '../../src/engine/sampling/index.js';
import { SAMPLERS } from '../../src/queue/job.js';
import { FIXTURE_MODELS } from '../helpers/fixture-cases.js';

const REFERENCE = join(import.meta.dirname, '..', 'fixtures', 'reference');

/** The classes this suite owns; the VP / multistep family is tested with its own modules. */
const SIGMA_CLASSES: Record<string, string> = {
  EulerDiscreteScheduler: 'euler',
  EulerAncestralDiscreteScheduler: 'euler_a',
  HeunDiscreteScheduler: 'heun',
  KDPM2DiscreteScheduler: 'dpm2',
  KDPM2AncestralDiscreteScheduler: 'dpm2_a',
  LMSDiscreteScheduler: 'lms',
};

function folderConfig(model: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(FIXTURE_MODELS, model, 'scheduler', 'scheduler_config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
}

interface PipelineCase {
  id: string;
  model: string;
  steps: number;
  /** img2img, inpaint and depth2img: the pipeline keeps the last int(steps * strength) steps. */
  strength?: number | null;
  sampler: string | null;
  timesteps: number[];
  sampler_effective: { class: string; effective_config: Record<string, unknown> };
}

const pipelineCases: PipelineCase[] = readdirSync(FIXTURE_MODELS)
  // sweep.cases.json runs end to end in sweep.test.ts; its Karras and DPM2 timesteps still differ from diffusers' by
  // float32 rounding (an ulp at most) in the sigma -> t conversion, which this exact check would flag
  .filter((f) => f.endsWith('.cases.json') && f !== 'sweep.cases.json')
  .flatMap((f) => (JSON.parse(readFileSync(join(FIXTURE_MODELS, f), 'utf8')) as { cases: PipelineCase[] }).cases)
  .filter((c) => c.sampler_effective && c.sampler_effective.class in SIGMA_CLASSES)
  // a refiner hand-off resumes mid-schedule (denoising_start): the pipeline tests check that one
  .filter((c) => typeof (c as { denoising_start?: unknown }).denoising_start !== 'number' || !(c as { base_model?: unknown }).base_model);

describe('effective config of the pipeline cases', () => {
  it('covers the public cases of the sigma family', () => {
    expect(pipelineCases.length).toBeGreaterThanOrEqual(8);
  });
  for (const c of pipelineCases) {
    it(`${c.id}: ${c.sampler ?? 'folder scheduler'} → ${c.sampler_effective.class}`, () => {
      const folder = folderConfig(c.model);
      const spec = c.sampler === null ? null : SAMPLER_TABLE.find((s) => s.label === c.sampler);
      if (c.sampler !== null) expect(spec, `label ${c.sampler}`).toBeDefined();
      const className = spec?.diffusersClass ?? (folder['_class_name'] as string);
      expect(className).toBe(c.sampler_effective.class);
      expect(effectiveConfig(className, folder, spec?.overrides)).toEqual(c.sampler_effective.effective_config);
      const s = createScheduler({
        sampler: spec?.name ?? null,
        schedule: 'default',
        folderConfig: folder,
        steps: c.steps,
      });
      const fed = typeof c.strength === 'number' ? img2imgTimesteps(s, c.steps, c.strength).timesteps : s.timesteps;
      expect(fed).toEqual(c.timesteps.map(Math.fround));
    });
  }
});

describe('effective config of the scheduler traces', () => {
  // README: the SD1.5 base config of every trace, with the case's prediction_type and timestep_spacing
  const base = {
    num_train_timesteps: 1000,
    beta_start: 0.00085,
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    steps_offset: 1,
    set_alpha_to_one: false,
    clip_sample: false,
    skip_prk_steps: true,
  };
  for (const variant of ['euler', 'euler_karras', 'euler_ancestral', 'heun', 'kdpm2', 'kdpm2_ancestral', 'lms']) {
    const doc = JSON.parse(readFileSync(join(REFERENCE, `sched_${variant}.json`), 'utf8')) as {
      cases: { class: string; config: Record<string, unknown>; prediction_type: string; timestep_spacing: string }[];
    };
    it(`sched_${variant}: every case's config`, () => {
      for (const c of doc.cases) {
        const folder = { ...base, prediction_type: c.prediction_type, timestep_spacing: c.timestep_spacing };
        const schedule = variant.endsWith('_karras') ? 'karras' : 'default';
        const overrides = schedule === 'karras' ? { use_karras_sigmas: true } : {};
        expect(effectiveConfig(c.class, folder, overrides)).toEqual(c.config);
        const s = createScheduler({ sampler: SIGMA_CLASSES[c.class] as never, schedule, folderConfig: folder, steps: 10 });
        expect(s.constructor.name).toBe(c.class);
      }
    });
  }
});

describe('from_config semantics', () => {
  const sd15 = folderConfig('tiny-sd15');

  it('folder keys carry over, absent keys take the new class defaults, overrides win', () => {
    const euler = effectiveConfig('EulerDiscreteScheduler', sd15);
    expect(euler['timestep_spacing']).toBe('linspace'); // Euler's default, not PNDM's "leading"
    expect(euler['steps_offset']).toBe(1);
    expect(euler['beta_schedule']).toBe('scaled_linear');
    expect(euler['skip_prk_steps']).toBe(true); // hidden key kept for compatible classes
    expect(Object.keys(euler).some((k) => k.startsWith('_'))).toBe(false);
    const heun = effectiveConfig('HeunDiscreteScheduler', sd15, { timestep_spacing: 'trailing', not_a_param: 1 });
    expect(heun['timestep_spacing']).toBe('trailing');
    expect(heun).not.toHaveProperty('not_a_param');
    expect(heun['clip_sample']).toBe(false);
  });

  it('keys a saved config lists in _use_default_values count as absent', () => {
    const saved = { ...sd15, timestep_spacing: 'leading', _use_default_values: ['timestep_spacing'] };
    expect(effectiveConfig('EulerDiscreteScheduler', saved)['timestep_spacing']).toBe('linspace');
    expect(effectiveConfig('EulerDiscreteScheduler', { ...saved, _use_default_values: [] })['timestep_spacing']).toBe(
      'leading',
    );
  });

  it('sampler null builds the folder class', () => {
    const sdxl = folderConfig('tiny-sdxl');
    const s = createScheduler({ sampler: null, schedule: 'default', folderConfig: sdxl, steps: 10 });
    expect(s.constructor.name).toBe('EulerDiscreteScheduler');
    expect(s.timesteps[0]).toBe(901); // the folder says "leading"
    expect(() =>
      createScheduler({ sampler: null, schedule: 'default', folderConfig: { _class_name: 'EDMEulerScheduler' }, steps: 10 }),
    ).toThrow(/not supported/);
  });
});

describe('samplers and schedules', () => {
  it('the table names every sampler at most once, with a diffusers class and an A1111 label', () => {
    const names = SAMPLER_TABLE.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    for (const spec of SAMPLER_TABLE) {
      expect(SAMPLERS).toContain(spec.name);
      expect(spec.diffusersClass).toMatch(/Scheduler$/);
      expect(spec.label.length).toBeGreaterThan(0);
    }
    for (const [cls, name] of Object.entries(SIGMA_CLASSES)) {
      expect(SAMPLER_TABLE.find((s) => s.name === name)?.diffusersClass).toBe(cls);
      expect(supportedClasses()).toContain(cls);
    }
    expect(SAMPLER_TABLE.find((s) => s.name === 'dpmpp_2m')?.overrides).toEqual({
      algorithm_type: 'dpmsolver++',
      solver_order: 2,
    });
  });

  it('karras sets use_karras_sigmas where the class has it and is refused where it has not', () => {
    const sd15 = folderConfig('tiny-sd15');
    for (const name of ['euler', 'heun', 'dpm2', 'dpm2_a', 'lms'] as const) {
      const plain = createScheduler({ sampler: name, schedule: 'default', folderConfig: sd15, steps: 10 });
      const karras = createScheduler({ sampler: name, schedule: 'karras', folderConfig: sd15, steps: 10 });
      expect(karras.sigmas![0], name).toBe(plain.sigmas![0]); // same sigma_max, Karras spacing below it
      expect(karras.sigmas![1], name).not.toBe(plain.sigmas![1]);
    }
    expect(() => createScheduler({ sampler: 'euler_a', schedule: 'karras', folderConfig: sd15, steps: 10 })).toThrow(
      /no Karras schedule/,
    );
  });

  it('exponential is refused: diffusers 0.30.3 has no use_exponential_sigmas', () => {
    const sd15 = folderConfig('tiny-sd15');
    for (const name of Object.values(SIGMA_CLASSES)) {
      expect(() =>
        createScheduler({ sampler: name as never, schedule: 'exponential', folderConfig: sd15, steps: 10 }),
      ).toThrow(/no exponential schedule/);
    }
  });
});

describe('img2imgTimesteps', () => {
  const sd15 = folderConfig('tiny-sd15');

  it('keeps int(steps * strength) steps, in model calls for order-2 schedulers', () => {
    const heun = createScheduler({ sampler: 'heun', schedule: 'default', folderConfig: sd15, steps: 10 });
    const { timesteps, tStart, beginIndex } = img2imgTimesteps(heun, 10, 0.5);
    expect(beginIndex).toBe(10);
    expect(timesteps).toEqual(heun.timesteps.slice(10));
    expect(tStart).toBe(heun.timesteps[10]);
    // int(7 * 0.3) = 2 steps kept
    const euler = createScheduler({ sampler: 'euler', schedule: 'default', folderConfig: sd15, steps: 7 });
    const r = img2imgTimesteps(euler, 7, 0.3);
    expect(r.timesteps).toHaveLength(2);
    expect(r.beginIndex).toBe(5);
    const x = new Float32Array([0]);
    expect(euler.addNoise(x, new Float32Array([1]), r.tStart)[0]).toBe(euler.sigmas![5]);
  });

  it('strength 1 keeps everything; a strength that keeps nothing is an error', () => {
    const euler = createScheduler({ sampler: 'euler', schedule: 'default', folderConfig: sd15, steps: 10 });
    expect(img2imgTimesteps(euler, 10, 1).timesteps).toEqual(euler.timesteps);
    const other = createScheduler({ sampler: 'euler', schedule: 'default', folderConfig: sd15, steps: 10 });
    expect(() => img2imgTimesteps(other, 10, 0.05)).toThrow(/no denoising step/);
  });
});
