/**
 * Image chores of the bot that the engine's image module (decode with limits, grids, upload encodings) does not
 * cover: cutting a grid back into cells (buttons under a grid point at a cell), the enlarged start of an upscale
 * pass, and the result files for an upload limit. (Zoom-out and pan canvases are the engine's: see outpaint.ts.)
 */
import sharp from 'sharp';
import { decodeImage, encodeForUpload, makeGrid, readPngParameters, type EncodedUpload } from '../../engine/image/index.js';

/** Columns × rows for a batch, as the engine's makeGrid lays it out with 2 columns. */
export function gridLayout(count: number): { cols: number; rows: number } {
  const cols = Math.min(2, Math.max(1, count));
  return { cols, rows: Math.ceil(count / cols) };
}

/**
 * What to upload for a job's PNGs: one grid (PNG with the first image's `parameters`, or WebP/JPEG when the PNG is
 * over `maxBytes`), or, when even that is too big, every image on its own. `dropped` counts images that fit nowhere.
 */
export async function uploadFiles(pngs: readonly Uint8Array[], maxBytes: number): Promise<{ files: EncodedUpload[]; dropped: number }> {
  const decoded = await Promise.all(pngs.map((p) => decodeImage(p, { maxBytes: Infinity })));
  const parameters = pngs[0] ? readPngParameters(pngs[0]) : null;
  const grid = makeGrid(decoded, 2);
  const whole = await encodeForUpload(grid.rgb, grid.width, grid.height, parameters, maxBytes).catch(() => null);
  if (whole) return { files: [whole], dropped: 0 };
  const each = await Promise.all(decoded.map((d, i) =>
    encodeForUpload(d.rgb, d.width, d.height, pngs[i] ? readPngParameters(pngs[i]) : null, maxBytes).catch(() => null)));
  const files = each.filter((f): f is EncodedUpload => f !== null);
  return { files, dropped: pngs.length - files.length };
}

/** Cell `index` (0-based) of a grid of `count` images, as PNG. Works on re-encoded or rescaled grids too. */
export async function cropCell(grid: Uint8Array, count: number, index: number): Promise<Uint8Array> {
  const { cols, rows } = gridLayout(count);
  if (cols === 1 && rows === 1) return grid;
  const { width = 0, height = 0 } = await sharp(grid).metadata();
  const w = Math.floor(width / cols);
  const h = Math.floor(height / rows);
  const out = await sharp(grid)
    .extract({ left: (index % cols) * w, top: Math.floor(index / cols) * h, width: w, height: h })
    .png()
    .toBuffer();
  return new Uint8Array(out);
}

export async function imageSize(bytes: Uint8Array): Promise<{ width: number; height: number }> {
  const { width = 0, height = 0 } = await sharp(bytes).metadata();
  return { width, height };
}

/** The image scaled by `factor` (sides rounded to multiples of 8), as PNG: the start of an upscale img2img pass. */
export async function scaleImage(png: Uint8Array, factor: number, maxSide: number): Promise<{ png: Uint8Array; width: number; height: number }> {
  const { width, height } = await imageSize(png);
  const scale = Math.min(factor, maxSide / Math.max(width, height));
  const w = Math.max(8, Math.round((width * scale) / 8) * 8);
  const h = Math.max(8, Math.round((height * scale) / 8) * 8);
  const out = await sharp(png).resize(w, h, { fit: 'fill', kernel: 'lanczos3' }).png().toBuffer();
  return { png: new Uint8Array(out), width: w, height: h };
}
