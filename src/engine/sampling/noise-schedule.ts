/**
 * Training noise schedules shared by every discrete-time sampler: betas, alphas_cumprod and the training sigmas,
 * computed in float32 the way diffusers builds its torch tensors (torch.linspace / torch.cumprod on float32), and the
 * standard timestep spacings used by DDIM, DDPM, PNDM, LCM and the Euler family.
 */
import type { SchedulerConfig } from './scheduler.js';
import { fmaf } from './avx-mathfun.js';

const f32 = Math.fround;

/**
 * torch.linspace(start, end, steps, dtype=float32), bit for bit as torch 1.13's AVX2 CPU kernel fills it: a float32
 * step `(end - start) / (steps - 1)`; element i is `start + step*i` below steps/2 and `end - step*(steps-1-i)` from
 * there, each one fused multiply-add. The kernel works in pairs of 8-lane vectors while 16 elements remain: a vector
 * takes that value for its first lane only and adds `step*l` (unfused) for lane l, so a vector that straddles the
 * half keeps counting from `start`. The last `steps % 16` elements come one by one.
 */
export function torchLinspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = start;
    return out;
  }
  const s = f32(start);
  const e = f32(end);
  const step = f32(f32(e - s) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  const at = (i: number): number => (i < halfway ? fmaf(step, i, s) : fmaf(-step, steps - i - 1, e));
  let i = 0;
  for (; i + 16 <= steps; i += 16) {
    for (const v of [i, i + 8]) {
      const base = at(v);
      out[v] = base;
      for (let lane = 1; lane < 8; lane++) out[v + lane] = f32(base + f32(lane * step));
    }
  }
  for (; i < steps; i++) out[i] = at(i);
  return out;
}

/** diffusers' betas_for_alpha_bar with the cosine alpha_bar (squaredcos_cap_v2), max beta 0.999. */
function cosineBetas(n: number): Float32Array {
  const alphaBar = (t: number): number => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999);
  return out;
}

export function betas(config: SchedulerConfig): Float32Array {
  const n = config.num_train_timesteps;
  if (config.trained_betas) return Float32Array.from(config.trained_betas);
  switch (config.beta_schedule) {
    case 'linear':
      return torchLinspaceF32(config.beta_start, config.beta_end, n);
    case 'scaled_linear': {
      const b = torchLinspaceF32(Math.sqrt(config.beta_start), Math.sqrt(config.beta_end), n);
      for (let i = 0; i < n; i++) b[i] = f32(b[i]! * b[i]!);
      return b;
    }
    case 'squaredcos_cap_v2':
      return cosineBetas(n);
    default:
      throw new Error(`unsupported beta_schedule ${String(config.beta_schedule)}`);
  }
}

/**
 * torch.cumprod on a CPU float32 tensor. The CPU kernel accumulates in double (`acc_type<float>` is double) and
 * rounds each partial product to float32, so a float32 running product drifts from it by up to ~1e-6.
 */
export function torchCumprodF32(values: Float32Array): Float32Array {
  const out = new Float32Array(values.length);
  let acc = 1;
  for (let i = 0; i < values.length; i++) {
    acc *= values[i]!;
    out[i] = acc;
  }
  return out;
}

/** torch.cumprod(1 - betas) on float32 tensors. */
export function alphasCumprod(config: SchedulerConfig): Float32Array {
  return torchCumprodF32(betas(config).map((b) => f32(1 - b)));
}

/**
 * np.arange(start, stop, step) for floats: numpy fills element i as start + i * ((start + step) - start), which is
 * not always start + i * step (it decides how "trailing" timesteps like 937.5 round).
 */
export function numpyArange(start: number, stop: number, step: number): number[] {
  const count = Math.max(Math.ceil((stop - start) / step), 0);
  const out: number[] = [];
  const second = start + step;
  const delta = second - start;
  for (let i = 0; i < count; i++) out.push(i === 0 ? start : i === 1 ? second : start + i * delta);
  return out;
}

/** sigmas_train = ((1 - acp) / acp) ** 0.5, float32, ascending with the training timestep. */
export function trainingSigmas(acp: Float32Array): Float32Array {
  const out = new Float32Array(acp.length);
  for (let i = 0; i < acp.length; i++) out[i] = f32(Math.sqrt(f32(f32(1 - acp[i]!) / acp[i]!)));
  return out;
}

/**
 * The timesteps (descending, float64, unrounded where the spacing is fractional) for `n` inference steps, as
 * DDIM / Euler / PNDM compute them: "linspace" = linspace(0, T-1, n); "leading" = arange(n) * (T // n) + offset;
 * "trailing" = round(arange(T, 0, -T/n)) - 1. Callers round or cast as their diffusers class does.
 */
export function spacedTimesteps(config: SchedulerConfig, n: number): number[] {
  const T = config.num_train_timesteps;
  const out: number[] = [];
  switch (config.timestep_spacing) {
    case 'linspace': {
      // numpy: arange(n) * step + start, with the last element set to stop exactly.
      const step = n === 1 ? 0 : (T - 1) / (n - 1);
      for (let i = 0; i < n; i++) out.push(i * step);
      if (n > 1) out[n - 1] = T - 1;
      break;
    }
    case 'leading': {
      const ratio = Math.floor(T / n);
      for (let i = 0; i < n; i++) out.push(Math.round(i * ratio) + config.steps_offset);
      break;
    }
    case 'trailing': {
      const ratio = T / n;
      for (const v of numpyArange(T, 0, -ratio).reverse()) out.push(roundHalfEven(v) - 1);
      break;
    }
    default:
      throw new Error(`unsupported timestep_spacing ${String(config.timestep_spacing)}`);
  }
  return out.reverse();
}

/** numpy's round: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
