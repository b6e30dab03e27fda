/** Per-family defaults for what a request leaves unset (the models file may override them per model). */
import type { Family } from './model-folder.js';

export interface FamilyDefaults {
  steps: number;
  guidance: number;
}

// diffusers' pipeline defaults are 50 steps; 30 is what chat users expect for latency with no visible quality loss
// on the multistep samplers most people pick.
export const FAMILY_DEFAULTS: Record<Family, FamilyDefaults> = {
  sd: { steps: 30, guidance: 7.5 },
  sdxl: { steps: 30, guidance: 5.0 },
  sd3: { steps: 28, guidance: 7.0 },
  upscale: { steps: 30, guidance: 9.0 },
};

/** Steps × images above this are refused up front so one job cannot hog a GPU for minutes. */
export const MAX_STEPS = 150;
