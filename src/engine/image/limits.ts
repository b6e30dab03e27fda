/** Size limits for images users send, and the wording used when one is exceeded. */

export interface ImageLimits {
  /** Largest accepted file, in bytes. */
  maxBytes: number;
  /** Largest accepted width × height, checked from the header before any pixel is decoded. */
  maxPixels: number;
}

export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;
export const DEFAULT_MAX_SIDE = 4096;
export const DEFAULT_LIMITS: ImageLimits = { maxBytes: DEFAULT_MAX_BYTES, maxPixels: DEFAULT_MAX_SIDE * DEFAULT_MAX_SIDE };

/** Beyond this side length decoders and the WebP encoder give up whatever the pixel count. */
export const MAX_SIDE = 16383;

export function resolveLimits(limits?: Partial<ImageLimits>): ImageLimits {
  return { ...DEFAULT_LIMITS, ...limits };
}

/** "12.3 MB" (binary megabytes, the unit chat platforms quote their upload limits in). */
export function describeBytes(n: number): string {
  const mb = n / (1024 * 1024);
  if (mb >= 1) return `${Number.isInteger(mb) ? mb : mb.toFixed(1)} MB`;
  const kb = n / 1024;
  return kb >= 1 ? `${Math.round(kb)} KB` : `${n} bytes`;
}

/** "4096×4096" when the pixel limit is a square, else "16.8 megapixels". */
export function describePixelLimit(maxPixels: number): string {
  const side = Math.round(Math.sqrt(maxPixels));
  if (side * side === maxPixels) return `${side}×${side}`;
  return `${(maxPixels / 1e6).toFixed(1)} megapixels`;
}
