/**
 * A DPT-style monocular depth estimator in the layout of stable-diffusion-2-depth folders: `depth_estimator/model.onnx`
 * (`pixel_values` [B,3,H,W] -> `predicted_depth` [B,H,W], larger = nearer) with its DPTImageProcessor settings in
 * `feature_extractor/preprocessor_config.json`. Used by depth-to-image and by ControlNet's depth preprocessor.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readJson, type JsonObject } from './model-folder.js';
import { ModelFolderError, ModelGraph, type Provider } from './onnx/session.js';
import { resizeRgb, type PilFilter } from './image/pil-resample.js';
import type { Tensor } from './tensor.js';
import { BadRequestError } from '../queue/job.js';

const f32 = Math.fround;
const PIL_FILTERS: Record<number, PilFilter> = { 0: 'box', 1: 'lanczos', 2: 'bilinear', 3: 'bicubic', 4: 'box', 5: 'hamming' };

export interface DepthEstimator {
  graph: ModelGraph;
  config: JsonObject;
}

export interface DepthMap {
  data: Float32Array;
  width: number;
  height: number;
}

/** Whether `dir` holds an estimator in the depth_estimator/ + feature_extractor/ layout. */
export function hasDepthEstimator(dir: string): boolean {
  return existsSync(join(dir, 'depth_estimator', 'model.onnx'));
}

export async function loadDepthEstimator(dir: string, providers: readonly Provider[] = ['cpu']): Promise<DepthEstimator> {
  if (!hasDepthEstimator(dir)) throw new ModelFolderError(`${dir}: no depth estimator (expected depth_estimator/model.onnx)`);
  const graph = await ModelGraph.load(join(dir, 'depth_estimator', 'model.onnx'), providers);
  graph.input('pixel_values');
  graph.requireOutput('predicted_depth');
  return { graph, config: readJson(join(dir, 'feature_extractor', 'preprocessor_config.json')) };
}

/** DPTImageProcessor: PIL resize of the uint8 image (aspect ignored), rescale, normalise, NCHW. */
function dptPixelValues(img: { rgb: Uint8Array; width: number; height: number }, config: JsonObject): Tensor {
  const size = (config['size'] ?? { height: 384, width: 384 }) as { height: number; width: number };
  if (config['keep_aspect_ratio'] === true) throw new BadRequestError('Depth estimators that keep the aspect ratio are not supported yet.');
  const filter = PIL_FILTERS[Number(config['resample'] ?? 3)] ?? 'bicubic';
  const rgb = config['do_resize'] === false ? img.rgb : resizeRgb(img.rgb, img.width, img.height, size, filter);
  const h = config['do_resize'] === false ? img.height : size.height;
  const w = config['do_resize'] === false ? img.width : size.width;
  const scale = Number(config['rescale_factor'] ?? 1 / 255);
  const mean = (config['image_mean'] ?? [0.5, 0.5, 0.5]) as number[];
  const std = (config['image_std'] ?? [0.5, 0.5, 0.5]) as number[];
  const out = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++) {
    const m = f32(mean[c]!);
    const s = f32(std[c]!);
    for (let i = 0; i < h * w; i++) out[c * h * w + i] = f32(f32(f32(rgb[i * 3 + c]! * scale) - m) / s);
  }
  return { data: out, dims: [1, 3, h, w] };
}

/** The estimator's raw depth of one image, at the estimator's resolution. */
export async function predictDepth(est: DepthEstimator, img: { rgb: Uint8Array; width: number; height: number }): Promise<DepthMap> {
  const out = await est.graph.run({ pixel_values: dptPixelValues(img, est.config) });
  const pred = out['predicted_depth'];
  if (!pred) throw new Error(`${est.graph.path}: no "predicted_depth" output`);
  return { data: pred.data, height: pred.dims[pred.dims.length - 2]!, width: pred.dims[pred.dims.length - 1]! };
}
