/** PIL's `convert("L")`: ITU-R 601-2 luma in 16-bit fixed point (libImaging/Convert.c), exact for gray input. */

export function pilLuma(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

/** HWC RGB → one byte per pixel, as `Image.convert("L")`. */
export function rgbToGray(rgb: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.floor(rgb.length / 3));
  for (let i = 0, p = 0; i < out.length; i++, p += 3) out[i] = pilLuma(rgb[p] as number, rgb[p + 1] as number, rgb[p + 2] as number);
  return out;
}
