/** Per-family defaults for what a request leaves unset (the models file may override them per model). */
import type { Family, ModelInfo } from './model-folder.js';
import type { SamplerName } from '../queue/job.js';

export interface FamilyDefaults {
  steps: number;
  guidance: number;
  /** null = the folder's own scheduler. */
  sampler: SamplerName | null;
}

// diffusers' pipeline defaults are 50 steps; 30 is what chat users expect for latency with no visible quality loss
// on the multistep samplers most people pick.
export const FAMILY_DEFAULTS: Record<Family, FamilyDefaults> = {
  sd: { steps: 30, guidance: 7.5, sampler: null },
  sdxl: { steps: 30, guidance: 5.0, sampler: null },
  sd3: { steps: 28, guidance: 7.0, sampler: null },
  upscale: { steps: 30, guidance: 9.0, sampler: null },
};

/** SD3.5's reference settings (sd3.5's sd3_infer.py): DPM++ 2M on the flow schedule, 40 steps, CFG 4.5. */
const SD35_DEFAULTS: FamilyDefaults = { steps: 40, guidance: 4.5, sampler: 'flow_dpmpp_2m' };

/**
 * SD3.5 transformers differ from SD3's in their config: query/key RMS norm (`qk_norm`) and, for Medium, dual
 * attention layers. Nothing else tells the two apart in an exported folder.
 */
export function isSd35(info: ModelInfo): boolean {
  const c = info.unetConfig;
  return info.family === 'sd3' && ((c['qk_norm'] !== undefined && c['qk_norm'] !== null) || Array.isArray(c['dual_attention_layers']));
}

export function defaultsFor(info: ModelInfo): FamilyDefaults {
  return isSd35(info) ? SD35_DEFAULTS : FAMILY_DEFAULTS[info.family];
}

/** Steps × images above this are refused up front so one job cannot hog a GPU for minutes. */
export const MAX_STEPS = 150;
