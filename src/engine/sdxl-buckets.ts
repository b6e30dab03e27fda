/**
 * SDXL's aspect-ratio buckets: the sizes it was fine-tuned on (SDXL report, appendix: about 1024² pixels each, sides
 * multiples of 64). Sizes off the list give visibly worse pictures, so requests snap to the bucket with the nearest
 * aspect ratio, scaled to the model's native resolution (a model whose default is 1024² uses the list as it is).
 */
const BUCKETS_1024: readonly (readonly [number, number])[] = [
  [512, 2048], [512, 1984], [512, 1920], [512, 1856], [576, 1792], [576, 1728], [576, 1664], [640, 1600], [640, 1536],
  [704, 1472], [704, 1408], [704, 1344], [768, 1344], [768, 1280], [832, 1216], [832, 1152], [896, 1152], [896, 1088],
  [960, 1088], [960, 1024], [1024, 1024], [1024, 960], [1088, 960], [1088, 896], [1152, 896], [1152, 832], [1216, 832],
  [1280, 768], [1344, 768], [1344, 704], [1408, 704], [1472, 704], [1536, 640], [1600, 640], [1664, 576], [1728, 576],
  [1792, 576], [1856, 512], [1920, 512], [1984, 512], [2048, 512],
];

export interface Size {
  width: number;
  height: number;
}

/** The bucket list for a model whose native square side is `native` (sides rounded to multiples of 8). */
export function bucketsFor(native: number): Size[] {
  const k = native / 1024;
  return BUCKETS_1024.map(([w, h]) => ({ width: Math.max(8, Math.round((w * k) / 8) * 8), height: Math.max(8, Math.round((h * k) / 8) * 8) }));
}

/** The bucket whose aspect ratio is nearest (in log ratio) to width:height. */
export function nearestBucket(width: number, height: number, native: number): Size {
  const target = Math.log(width / height);
  let best = bucketsFor(native)[0]!;
  for (const b of bucketsFor(native)) {
    if (Math.abs(Math.log(b.width / b.height) - target) < Math.abs(Math.log(best.width / best.height) - target)) best = b;
  }
  return best;
}
