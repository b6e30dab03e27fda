/**
 * The sampler factory: maps the common sampler vocabulary (euler, dpmpp_2m, …) and schedule (default, karras) onto a
 * diffusers 0.30.3 scheduler class and config, resolved the way `Class.from_config(folder_config, **overrides)` does,
 * and builds the scheduler for a number of steps. Pipelines import only this module.
 */
import { BadRequestError } from '../../queue/job.js';
import type { SamplerName, ScheduleName } from '../../queue/job.js';
import type { Scheduler, SchedulerConfig } from './scheduler.js';
import { EulerDiscreteScheduler, eulerDefaults } from './samplers/euler.js';
import { EulerAncestralDiscreteScheduler, eulerAncestralDefaults } from './samplers/euler-ancestral.js';
import { HeunDiscreteScheduler, heunDefaults } from './samplers/heun.js';
import { KDPM2DiscreteScheduler, kdpm2Defaults } from './samplers/kdpm2.js';
import { KDPM2AncestralDiscreteScheduler, kdpm2AncestralDefaults } from './samplers/kdpm2-ancestral.js';
import { LMSDiscreteScheduler, lmsDefaults } from './samplers/lms.js';
// ── VP / multistep family (DDIM, DDPM, PNDM, DPM-Solver, UniPC, DEIS, LCM, flow-match): imports go here ──
import { DDIMScheduler, ddimDefaults } from './samplers/ddim.js';
import { DDPMScheduler, ddpmDefaults } from './samplers/ddpm.js';
import { PNDMScheduler, pndmDefaults } from './samplers/pndm.js';
import { DPMSolverMultistepScheduler, dpmSolverMultistepDefaults } from './samplers/dpm-solver-multistep.js';
import { DPMSolverSinglestepScheduler, dpmSolverSinglestepDefaults } from './samplers/dpm-solver-singlestep.js';
import { UniPCMultistepScheduler, unipcDefaults } from './samplers/unipc.js';
import { DEISMultistepScheduler, deisDefaults } from './samplers/deis.js';
import { LCMScheduler, lcmDefaults } from './samplers/lcm.js';
import { FlowMatchEulerDiscreteScheduler, flowMatchEulerDefaults } from './samplers/flow-match-euler.js';
import { FlowDpmpp2mScheduler, flowDpmpp2mDefaults } from './samplers/flow-dpmpp-2m.js';
import { DPMSolverSDEScheduler, dpmSolverSdeDefaults } from './samplers/dpm-solver-sde.js';

export type { NoiseSampler, Scheduler, SchedulerConfig } from './scheduler.js';

export interface SamplerSpec {
  name: SamplerName;
  diffusersClass: string;
  overrides: Record<string, unknown>;
  /** The AUTOMATIC1111 name, e.g. "DPM++ 2M" (PNG metadata, help texts). */
  label: string;
}

/** The single source for README's samplers table and the bots' sampler choices. */
export const SAMPLER_TABLE: readonly SamplerSpec[] = [
  { name: 'euler', diffusersClass: 'EulerDiscreteScheduler', overrides: {}, label: 'Euler' },
  { name: 'euler_a', diffusersClass: 'EulerAncestralDiscreteScheduler', overrides: {}, label: 'Euler a' },
  { name: 'heun', diffusersClass: 'HeunDiscreteScheduler', overrides: {}, label: 'Heun' },
  { name: 'dpm2', diffusersClass: 'KDPM2DiscreteScheduler', overrides: {}, label: 'DPM2' },
  { name: 'dpm2_a', diffusersClass: 'KDPM2AncestralDiscreteScheduler', overrides: {}, label: 'DPM2 a' },
  { name: 'lms', diffusersClass: 'LMSDiscreteScheduler', overrides: {}, label: 'LMS' },
  {
    name: 'dpmpp_2m',
    diffusersClass: 'DPMSolverMultistepScheduler',
    overrides: { algorithm_type: 'dpmsolver++', solver_order: 2 },
    label: 'DPM++ 2M',
  },
  {
    name: 'dpmpp_2m_sde',
    diffusersClass: 'DPMSolverMultistepScheduler',
    overrides: { algorithm_type: 'sde-dpmsolver++' },
    label: 'DPM++ 2M SDE',
  },
  { name: 'dpmpp_sde', diffusersClass: 'DPMSolverSDEScheduler', overrides: {}, label: 'DPM++ SDE' },
  { name: 'dpm_singlestep', diffusersClass: 'DPMSolverSinglestepScheduler', overrides: {}, label: 'DPM++ 2S' },
  { name: 'ddim', diffusersClass: 'DDIMScheduler', overrides: {}, label: 'DDIM' },
  { name: 'ddpm', diffusersClass: 'DDPMScheduler', overrides: {}, label: 'DDPM' },
  { name: 'pndm', diffusersClass: 'PNDMScheduler', overrides: {}, label: 'PLMS' },
  { name: 'unipc', diffusersClass: 'UniPCMultistepScheduler', overrides: {}, label: 'UniPC' },
  { name: 'deis', diffusersClass: 'DEISMultistepScheduler', overrides: {}, label: 'DEIS' },
  { name: 'lcm', diffusersClass: 'LCMScheduler', overrides: {}, label: 'LCM' },
  { name: 'flow_euler', diffusersClass: 'FlowMatchEulerDiscreteScheduler', overrides: {}, label: 'Euler (flow)' },
  // ── flow_dpmpp_2m: the VP / multistep helper adds its entry here ──
  // not a diffusers class: SD3.5's reference sample_dpmpp_2m on the FlowMatchEulerDiscreteScheduler schedule
  { name: 'flow_dpmpp_2m', diffusersClass: 'FlowDpmpp2mScheduler', overrides: {}, label: 'DPM++ 2M (flow)' },
];

interface SchedulerClass {
  /** The class __init__ defaults, in signature order (that order is the effective config's key order). */
  defaults: Readonly<Record<string, unknown>>;
  /**
   * `strength` reaches only schedulers whose set_timesteps takes it (LCM img2img); the others slice by it. `seeds`
   * (the images' seeds) reaches only DPM++ SDE, whose Brownian noise is seeded by them unless its config names a seed.
   */
  create(config: SchedulerConfig, steps: number, strength?: number, seeds?: readonly bigint[]): Scheduler;
}

/** diffusers class name → implementation. */
const CLASSES: Readonly<Record<string, SchedulerClass>> = {
  EulerDiscreteScheduler: { defaults: eulerDefaults, create: (c, n) => new EulerDiscreteScheduler(c, n) },
  EulerAncestralDiscreteScheduler: {
    defaults: eulerAncestralDefaults,
    create: (c, n) => new EulerAncestralDiscreteScheduler(c, n),
  },
  HeunDiscreteScheduler: { defaults: heunDefaults, create: (c, n) => new HeunDiscreteScheduler(c, n) },
  KDPM2DiscreteScheduler: { defaults: kdpm2Defaults, create: (c, n) => new KDPM2DiscreteScheduler(c, n) },
  KDPM2AncestralDiscreteScheduler: {
    defaults: kdpm2AncestralDefaults,
    create: (c, n) => new KDPM2AncestralDiscreteScheduler(c, n),
  },
  LMSDiscreteScheduler: { defaults: lmsDefaults, create: (c, n) => new LMSDiscreteScheduler(c, n) },
  // ── VP / multistep family: DDIMScheduler, DDPMScheduler, PNDMScheduler, DPMSolverMultistepScheduler,
  //    DPMSolverSinglestepScheduler, UniPCMultistepScheduler, DEISMultistepScheduler, LCMScheduler,
  //    FlowMatchEulerDiscreteScheduler entries go here ──
  DDIMScheduler: { defaults: ddimDefaults, create: (c, n) => new DDIMScheduler(c, n) },
  DDPMScheduler: { defaults: ddpmDefaults, create: (c, n) => new DDPMScheduler(c, n) },
  PNDMScheduler: { defaults: pndmDefaults, create: (c, n) => new PNDMScheduler(c, n) },
  DPMSolverMultistepScheduler: {
    defaults: dpmSolverMultistepDefaults,
    create: (c, n) => new DPMSolverMultistepScheduler(c, n),
  },
  DPMSolverSinglestepScheduler: {
    defaults: dpmSolverSinglestepDefaults,
    create: (c, n) => new DPMSolverSinglestepScheduler(c, n),
  },
  UniPCMultistepScheduler: { defaults: unipcDefaults, create: (c, n) => new UniPCMultistepScheduler(c, n) },
  DEISMultistepScheduler: { defaults: deisDefaults, create: (c, n) => new DEISMultistepScheduler(c, n) },
  // LCM img2img: its pipeline passes strength to set_timesteps instead of slicing (new LCMScheduler(c, n, { strength }))
  LCMScheduler: { defaults: lcmDefaults, create: (c, n, strength) => new LCMScheduler(c, n, strength === undefined ? {} : { strength }) },
  FlowMatchEulerDiscreteScheduler: {
    defaults: flowMatchEulerDefaults,
    create: (c, n) => new FlowMatchEulerDiscreteScheduler(c, n),
  },
  FlowDpmpp2mScheduler: { defaults: flowDpmpp2mDefaults, create: (c, n) => new FlowDpmpp2mScheduler(c, n) },
  DPMSolverSDEScheduler: {
    defaults: dpmSolverSdeDefaults,
    create: (c, n, _strength, seeds) => new DPMSolverSDEScheduler(c, n, seeds),
  },
};

/** The diffusers class names the factory can build. */
export function supportedClasses(): string[] {
  return Object.keys(CLASSES);
}

function classFor(className: string): SchedulerClass {
  const cls = CLASSES[className];
  if (!cls) throw new Error(`scheduler class ${className} is not supported (supported: ${supportedClasses().join(', ')})`);
  return cls;
}

/**
 * diffusers' `Class.from_config(folderConfig, **overrides)`: keys present in the folder's scheduler_config.json carry
 * over, keys absent take the NEW class's defaults (a folder config saved by diffusers lists the keys that were
 * defaults in `_use_default_values`; those count as absent), overrides win over both, and the folder's keys the class
 * does not know stay in the config as diffusers' "hidden" keys. Returns the effective config.
 */
export function effectiveConfig(
  className: string,
  folderConfig: Record<string, unknown>,
  overrides: Record<string, unknown> = {},
): SchedulerConfig {
  const { defaults } = classFor(className);
  const usedDefaults = new Set(Array.isArray(folderConfig['_use_default_values']) ? folderConfig['_use_default_values'] : []);
  const present = (key: string): boolean => Object.hasOwn(folderConfig, key) && !usedDefaults.has(key);
  const config: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(defaults)) {
    if (Object.hasOwn(overrides, key)) config[key] = overrides[key];
    else config[key] = present(key) ? folderConfig[key] : value;
  }
  for (const key of Object.keys(folderConfig)) {
    if (!key.startsWith('_') && present(key) && !Object.hasOwn(config, key)) config[key] = folderConfig[key];
  }
  return config as SchedulerConfig;
}

/** The class and overrides for a sampler and schedule; throws for a schedule the class cannot run. */
function resolveSampler(
  sampler: SamplerName | null,
  schedule: ScheduleName,
  folderConfig: Record<string, unknown>,
): { className: string; overrides: Record<string, unknown> } {
  let className: string;
  let overrides: Record<string, unknown> = {};
  if (sampler === null) {
    const folderClass = folderConfig['_class_name'];
    if (typeof folderClass !== 'string') throw new Error('scheduler_config.json has no _class_name');
    className = folderClass;
  } else {
    const spec = SAMPLER_TABLE.find((s) => s.name === sampler);
    if (!spec) throw new Error(`sampler ${sampler} is not available`);
    className = spec.diffusersClass;
    overrides = { ...spec.overrides };
  }
  const { defaults } = classFor(className);
  if (schedule === 'karras') {
    if (!Object.hasOwn(defaults, 'use_karras_sigmas')) {
      throw new Error(`${className} has no Karras schedule in diffusers 0.30.3 (no use_karras_sigmas)`);
    }
    overrides['use_karras_sigmas'] = true;
  } else if (schedule === 'exponential') {
    if (!Object.hasOwn(defaults, 'use_exponential_sigmas')) {
      throw new Error(`${className} has no exponential schedule in diffusers 0.30.3 (no use_exponential_sigmas)`);
    }
    overrides['use_exponential_sigmas'] = true;
  }
  return { className, overrides };
}

export function createScheduler(opts: {
  /** null = the folder's own class. */
  sampler: SamplerName | null;
  schedule: ScheduleName;
  folderConfig: Record<string, unknown>;
  steps: number;
  overrides?: Record<string, unknown>;
  /** img2img strength, for the LCM scheduler which draws its img2img schedule itself. */
  strength?: number;
  /** The images' seeds (seed + i): DPM++ SDE seeds its Brownian noise with them when the config names no seed. */
  seeds?: readonly bigint[];
}): Scheduler {
  const { className, overrides } = resolveSampler(opts.sampler, opts.schedule, opts.folderConfig);
  const config = effectiveConfig(className, opts.folderConfig, { ...overrides, ...opts.overrides });
  return classFor(className).create(config, opts.steps, opts.strength, opts.seeds);
}

/**
 * StableDiffusionImg2ImgPipeline.get_timesteps: keeps the last `int(steps * strength)` steps (order-2 schedulers:
 * their model calls), and set_begin_index so the scheduler starts there. `tStart` is the first kept timestep, the
 * one the init latents are noised to; `beginIndex` is its position in the full schedule.
 */
export function img2imgTimesteps(
  s: Scheduler,
  steps: number,
  strength: number,
): { timesteps: number[]; tStart: number; beginIndex: number } {
  // LatentConsistencyModelImg2ImgPipeline passes the strength into set_timesteps and runs every resulting timestep.
  if (s instanceof LCMScheduler) return { timesteps: [...s.timesteps], tStart: s.timesteps[0]!, beginIndex: 0 };
  const initTimestep = Math.min(Math.trunc(steps * strength), steps);
  const startStep = Math.max(steps - initTimestep, 0);
  const beginIndex = startStep * s.order;
  const timesteps = s.timesteps.slice(beginIndex);
  const tStart = timesteps[0];
  if (tStart === undefined) {
    throw new BadRequestError(`Strength ${strength} with ${steps} steps leaves no denoising step: raise the strength or the steps.`);
  }
  s.setBeginIndex(beginIndex);
  return { timesteps, tStart, beginIndex };
}
