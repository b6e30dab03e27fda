/** An 8-bit sRGB image, pixels interleaved row by row (HWC, 3 bytes per pixel). */
export interface RgbImage {
  width: number;
  height: number;
  rgb: Uint8Array;
}
