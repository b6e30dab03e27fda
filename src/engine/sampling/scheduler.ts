/**
 * The scheduler contract every sampler implements. It mirrors diffusers' scheduler API on purpose, so a pipeline
 * reads like its diffusers original and the per-step traces in the reference fixtures map one to one:
 *
 *   x = noise * initNoiseSigma
 *   for (const t of s.timesteps) { xIn = s.scaleModelInput(x, t); out = model(xIn, t); x = s.step(out, t, x, noise) }
 *
 * Tensors are flat Float32Arrays of the whole batch (row-major NCHW). Scheduler arithmetic may run in float64 and
 * round to float32 at the end of each step: the fixtures' tolerance (rtol 1e-4, atol 1e-5) covers it.
 */
import { latentBuffer } from '../simd/latent-kernels.js';

/**
 * Draws fresh standard-normal noise shaped like the batch latents. The pipeline builds it so that image i draws from
 * its own generator (seed+i) with shape [1, C, h, w], as diffusers' randn_tensor does with a list of generators.
 */
export type NoiseSampler = () => Float32Array;

export interface Scheduler {
  /** One entry per model call, in the order the pipeline must make them (order-2 samplers repeat timesteps). */
  readonly timesteps: readonly number[];
  /** int64 timesteps are integers the model must receive exactly; float32 ones may be fractional. */
  readonly timestepsDtype: 'int64' | 'float32';
  /** The sigma schedule (with the trailing final sigma) for sigma-based samplers; undefined for VP-form ones. */
  readonly sigmas?: readonly number[];
  readonly initNoiseSigma: number;
  /** 1, or 2 for samplers that call the model twice per step (Heun, KDPM2…). Used by img2img's timestep slicing. */
  readonly order: number;
  /**
   * Whether step() draws from the noise sampler: the pipeline's noise worker then starts drawing before the loop,
   * so not even the first draw lands between two model runs.
   */
  readonly drawsNoise: boolean;
  /** diffusers' set_begin_index: where img2img starts in `timesteps` (index into that array). */
  setBeginIndex(index: number): void;
  /**
   * The model input for t. With `out`, a scheduler that computes a new array writes it there (the pipeline passes the
   * first half of its CFG batch, saving a copy); one that returns `sample` as it is may ignore `out`.
   */
  scaleModelInput(sample: Float32Array, t: number, out?: Float32Array): Float32Array;
  step(modelOutput: Float32Array, t: number, sample: Float32Array, noise: NoiseSampler): Float32Array;
  /**
   * Optional: gets ready for a run over latents of `numel` values before the loop (e.g. starts noise workers);
   * `close` ends what it started. The loop calls both; a sampler must also work without them.
   */
  prepare?(numel: number): Promise<void>;
  close?(): void;
  /** diffusers' add_noise (flow schedulers: scale_noise) for img2img at timestep t. */
  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array;
}

/** The diffusers scheduler config keys the engine understands (a folder's scheduler_config.json plus overrides). */
export interface SchedulerConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
  trained_betas: number[] | null;
  prediction_type: 'epsilon' | 'v_prediction' | 'sample';
  timestep_spacing: 'leading' | 'trailing' | 'linspace';
  steps_offset: number;
  [key: string]: unknown;
}

/**
 * Step outputs without a fresh allocation per step: a 128 KiB Float32Array costs more to allocate and fault in than
 * the step's arithmetic (glibc maps blocks of that size anew each time). Three buffers rotate, so the array a step
 * returns stays valid while it is the next step's `sample` and while a sampler keeps it one step more (UniPC's
 * corrector); callers must not hold an output longer than that.
 */
export class RotatingBuffers {
  private readonly buffers: Float32Array[] = [];
  private turn = 0;

  next(length: number): Float32Array {
    const i = this.turn;
    this.turn = (this.turn + 1) % 3;
    let b = this.buffers[i];
    if (!b || b.length !== length) {
      b = latentBuffer(length);
      this.buffers[i] = b;
    }
    return b;
  }
}
