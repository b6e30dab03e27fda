/** The engine's image module: everything between attachment bytes and model tensors, and back to uploadable files. */
export type { RgbImage } from './types.js';
export { DEFAULT_LIMITS, DEFAULT_MAX_BYTES, type ImageLimits } from './limits.js';
export { sniffImage, type ImageFormat, type Sniffed } from './sniff.js';
export { decodeImage, decodeMask, type DecodedImage, type DecodedMask } from './decode.js';
export { loadImageRef, type RedisGetter } from './image-ref.js';
export { imageToTensor, tensorToImages, maskToTensor, roundHalfEven, type TensorRange } from './tensor.js';
export { pilLuma, rgbToGray } from './gray.js';
export { resizeU8, resizeRgb, resizeGray, type PilFilter, type Size } from './pil-resample.js';
export { interpolateBicubic, interpolateNearest, type PlaneShape } from './torch-interpolate.js';
export { addPngText, readPngText, readPngParameters, type PngTextEntry } from './png-text.js';
export { readImageParameters } from './read-parameters.js';
export {
  infotext, requestInfotext, parseInfotext, samplerLabel, INFOTEXT_VERSION,
  type InfotextParams, type ResolvedImageParams, type ParsedInfotext,
} from './infotext.js';
export { encodePng, encodeForUpload, type EncodedUpload, type UploadFormat } from './encode.js';
export { makeGrid } from './grid.js';
export { latentPreview, latentToRgb, type LatentFamily } from './preview.js';
export { cannyEdges } from './canny.js';
export { outpaintCanvas, outpaintPads, describeOutpaint, type OutpaintCanvas, type OutpaintPads } from './outpaint.js';
