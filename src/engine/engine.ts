/**
 * The engine as the queue worker sees it: run a job, hold models. The implementation (model registry, ONNX
 * sessions, pipelines) sits behind `createEngine` in src/engine/create-engine.ts.
 */
import type { GenerationRequest, GenerationResult, JobHooks } from '../queue/job.js';

export interface ModelEntry {
  /** The id jobs use: the folder name unless the models file names it. */
  id: string;
  dir: string;
  /** ControlNet folders from outside the model folder; jobs name them by id (controls[].controlnet). */
  controlnets?: { id: string; dir: string }[];
  /** A folder with depth_estimator/ + feature_extractor/ for the ControlNet depth preprocessor (default: the model's own). */
  depthEstimator?: string;
}

export interface EngineOptions {
  /** Reads input images stored in Redis (ImageRef kind 'redis'); absent in pure CLI use. */
  fetchInput?: (key: string) => Promise<Uint8Array | null>;
  /** Execution providers in preference order; CPU is always the fallback. */
  providers?: readonly ('cuda' | 'tensorrt' | 'cpu')[];
}

export interface Engine {
  runJob(request: GenerationRequest, hooks?: JobHooks): Promise<GenerationResult>;
  loadModel(entry: ModelEntry): Promise<void>;
  unloadModel(id: string): Promise<void>;
  loadedModels(): string[];
  /** "cpu", "cuda:0", … for worker heartbeats. */
  readonly device: string;
  close(): Promise<void>;
}
