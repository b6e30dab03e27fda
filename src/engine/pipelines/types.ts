/** What a pipeline recipe takes and returns once run-job has resolved the request against the model. */
import type { SamplerName, ScheduleName } from '../../queue/job.js';
import type { Tensor } from '../tensor.js';

export interface PipelineParams {
  prompt: string;
  /** null = none given (SDXL then uses zero embeddings when the folder says so). */
  negativePrompt: string | null;
  /** One per image: seed + i. */
  seeds: bigint[];
  steps: number;
  guidance: number;
  guidanceRescale: number;
  sampler: SamplerName | null;
  schedule: ScheduleName;
  width: number;
  height: number;
  strength: number;
  /** [1, 3, H, W] in [-1, 1], already at width × height. */
  init: Tensor | null;
  /** [1, 1, H, W] binarised (1 = repaint). */
  mask: Tensor | null;
  signal?: AbortSignal | undefined;
  onStep?: ((step: number, total: number, latents: Tensor) => void) | undefined;
}

export interface PipelineOutput {
  /** Final latents before 1/scaling_factor. */
  latents: Tensor;
  /** Raw VAE decoder output [N, 3, H, W] (about [-1, 1]). */
  images: Tensor;
  notes: string[];
  timings: { textMs: number; denoiseMs: number; unetMs: number; decodeMs: number };
}
