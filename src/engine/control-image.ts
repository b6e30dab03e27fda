/**
 * A job's control image → the ControlNet conditioning: the preprocessor (none, canny edges, estimated depth), then
 * diffusers' control image processor (LANCZOS to the job size, [0, 1], no normalisation).
 *
 * Depth follows the annotator ControlNet depth models were trained with (controlnet_aux's MidasDetector): the
 * estimator's raw depth (larger = nearer), min–max normalised per image, `(d·255).clip(0, 255).astype(uint8)`
 * (truncation), the same value on all three channels; the map is at the estimator's resolution and is resized to the
 * job size like any other control image.
 */
import type { LoadedModel } from './loaded-model.js';
import { predictDepth, type DepthMap } from './depth-estimator.js';
import { cannyEdges, imageToTensor, resizeRgb, type RgbImage } from './image/index.js';
import type { Tensor } from './tensor.js';
import { BadRequestError, type ControlPreprocess } from '../queue/job.js';

const f32 = Math.fround;

/** MidasDetector's depth picture: per-image min–max to 0…255 (truncated), grey RGB. */
function depthToControlImage(depth: DepthMap): RgbImage {
  let min = Infinity;
  let max = -Infinity;
  for (const v of depth.data) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  if (!(max > min)) throw new BadRequestError('The estimated depth is flat (every pixel at the same depth): nothing for a depth ControlNet to follow.');
  const range = f32(max - min);
  const rgb = new Uint8Array(depth.data.length * 3);
  for (let i = 0; i < depth.data.length; i++) {
    const v = Math.min(255, Math.max(0, Math.trunc(f32(f32(f32(depth.data[i]! - min) / range) * 255))));
    rgb[i * 3] = v;
    rgb[i * 3 + 1] = v;
    rgb[i * 3 + 2] = v;
  }
  return { rgb, width: depth.width, height: depth.height };
}

/** The estimated-depth control picture of an image, with the depth estimator set for the model. */
export async function depthControlImage(model: LoadedModel, image: RgbImage): Promise<RgbImage> {
  if (!model.depthEstimatorDir) {
    throw new BadRequestError(
      `Depth preprocessing needs a depth estimator, and ${model.info.name} has none: its folder has no depth_estimator/ and no `
      + '"depthEstimator" folder is set for it in the models file (sdbot generate: --depth-estimator DIR). Or attach a ready depth map with preprocessing none.',
    );
  }
  return depthToControlImage(await predictDepth(await model.depthEstimator(), image));
}

/** The conditioning tensor [1, 3, height, width] in [0, 1] for one control. */
export async function controlConditioning(
  model: LoadedModel, image: RgbImage, preprocess: ControlPreprocess, width: number, height: number,
): Promise<Tensor> {
  const c = preprocess === 'canny' ? cannyEdges(image) : preprocess === 'depth' ? await depthControlImage(model, image) : image;
  const rgb = c.width === width && c.height === height ? c.rgb : resizeRgb(c.rgb, c.width, c.height, { width, height }, 'lanczos');
  return { data: imageToTensor(rgb, width, height, 'unit'), dims: [1, 3, height, width] };
}
