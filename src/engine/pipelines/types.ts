/** What a pipeline recipe takes and returns once run-job has resolved the request against the model. */
import type { SamplerName, ScheduleName } from '../../queue/job.js';
import type { Tensor } from '../tensor.js';
import type { ModelGraph } from '../onnx/session.js';

export interface ResolvedControl {
  graph: ModelGraph;
  image: Tensor;
  scale: number;
  start: number;
  end: number;
}

export interface PipelineParams {
  prompt: string;
  /** null = none given (SDXL then uses zero embeddings when the folder says so). */
  negativePrompt: string | null;
  /** One per image: seed + i. */
  seeds: bigint[];
  /** A1111 variation seeds (seed + i per image) and strength, for the start noise (see steps.ts's startNoise). */
  variation?: { seeds: bigint[]; strength: number } | null;
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
  /** SDXL micro-conditioning; null parts take diffusers' defaults. */
  microConditioning?: {
    originalSize: { width: number; height: number } | null;
    cropTopLeft: { top: number; left: number } | null;
    targetSize: { width: number; height: number } | null;
  };
  /** The init image as decoded, before resizing (the depth estimator has its own preprocessing). */
  initImage?: { rgb: Uint8Array; width: number; height: number } | null;
  /** A user-supplied depth map: PIL "L" values / 255, row-major. */
  depthMap?: { data: Float32Array; width: number; height: number } | null;
  /** SDXL refiner conditioning (diffusers' defaults 6.0 / 2.5). */
  aestheticScore?: number;
  negativeAestheticScore?: number;
  /**
   * ControlNets, in order (their residuals are summed as diffusers' MultiControlNetModel does): each one's graph, its
   * conditioning image [1, 3, H, W] in [0, 1], its scale and the fraction of steps it acts on.
   */
  controls?: readonly ResolvedControl[];
  /**
   * ControlNet guess mode (diffusers' guess_mode): with CFG the ControlNets see only the conditional batch (zero
   * residuals for the unconditional half) and residual k is scaled by logspace(-1, 0, K+1)[k] × scale.
   */
  controlGuessMode?: boolean;
  /** SD3.5 skip-layer guidance. */
  slg?: { layers: number[]; scale: number; start: number; end: number } | null;
  /** SD3 text: T5 on/off and its sequence length. */
  useT5?: boolean;
  maxSequenceLength?: number;
  /** x4 upscaler: noise added to the low-res image (0 … max_noise_level); stable unCLIP: noise added to the image
   * embedding (0 … num_train_timesteps - 1). null/undefined = the pipeline's default (20 / 0). */
  noiseLevel?: number | null;
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
  /** Settings the pipeline resolved itself, for the images' infotext (denoisingStrength null = none was used). */
  infotext?: { noiseLevel?: number; denoisingStrength?: number | null };
}
