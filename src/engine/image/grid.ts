/** Batch results side by side: the 2×2 (or 1×2, 2×1 …) grid image chat bots post for a batch. */
import type { RgbImage } from './types.js';

/**
 * Lays `images` out row by row, `cols` per row (fewer when there are fewer images). Cells take the largest width and
 * height among the images; a smaller image is centred in its cell, and empty cells are filled with `background`.
 */
export function makeGrid(images: readonly RgbImage[], cols = 2, background: [number, number, number] = [0, 0, 0]): RgbImage {
  if (images.length === 0) throw new RangeError('makeGrid: no images');
  const c = Math.max(1, Math.min(cols, images.length));
  const rows = Math.ceil(images.length / c);
  const cellW = Math.max(...images.map((i) => i.width));
  const cellH = Math.max(...images.map((i) => i.height));
  const width = cellW * c;
  const height = cellH * rows;
  const rgb = new Uint8Array(width * height * 3);
  const [r, g, b] = background;
  const hasGaps = images.length < rows * c || images.some((i) => i.width !== cellW || i.height !== cellH);
  if (hasGaps && (r | g | b) !== 0) {
    for (let p = 0; p < rgb.length; p += 3) {
      rgb[p] = r;
      rgb[p + 1] = g;
      rgb[p + 2] = b;
    }
  }
  const stride = width * 3;
  images.forEach((img, k) => {
    if (img.rgb.length !== img.width * img.height * 3) throw new RangeError(`makeGrid: image ${k} has the wrong byte count`);
    const x0 = (k % c) * cellW + ((cellW - img.width) >> 1);
    const y0 = Math.floor(k / c) * cellH + ((cellH - img.height) >> 1);
    const rowBytes = img.width * 3;
    for (let y = 0; y < img.height; y++) {
      rgb.set(img.rgb.subarray(y * rowBytes, (y + 1) * rowBytes), (y0 + y) * stride + x0 * 3);
    }
  });
  return { width, height, rgb };
}
