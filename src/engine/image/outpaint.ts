/**
 * Outpainting canvases: where the source goes inside the larger picture, what the new area starts as, and the mask
 * that tells the inpaint pipeline what to paint. The pipeline itself is the ordinary inpaint one (9-channel inpaint
 * UNets, or a plain UNet with the known region blended back), so an outpaint is exactly diffusers'
 * StableDiffusionInpaintPipeline called with this canvas and mask.
 */
import { BadRequestError, type OutpaintPan, type OutpaintSpec } from '../../queue/job.js';
import type { RgbImage } from './types.js';

export interface OutpaintPads {
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** A pan grows the picture by this fraction of its length along the pan's axis. */
const PAN_FRACTION = 0.5;
/** A pan stops before the picture gets longer than this many times its other side. */
export const MAX_PAN_ASPECT = 4;
/** Largest canvas built (a zoom-out shrinks it back to the output size afterwards): 64 MB of RGB. */
const MAX_CANVAS_PIXELS = 4 * 2048 * 2048;

/** Nearest multiple of 8, halves up: latents are 1/8 of the image, so sides stay whole latents. */
function round8(x: number): number {
  return Math.floor(x / 8 + 0.5) * 8;
}

function floor8(x: number): number {
  return Math.floor(x / 8) * 8;
}

const PAN_SIDE: Record<OutpaintPan, keyof OutpaintPads> = { left: 'left', right: 'right', up: 'top', down: 'bottom' };

/**
 * The pixels each side of a `width`×`height` source grows by. Zoom: both axes grow by (factor − 1)·side, split
 * evenly (the odd 8 px go right / bottom). Pan: one side grows by PAN_FRACTION of the length along it, capped so
 * that side stays within `maxSide` and the aspect within MAX_PAN_ASPECT.
 */
export function outpaintPads(spec: OutpaintSpec, width: number, height: number, maxSide: number): OutpaintPads {
  if ('zoom' in spec) {
    const ex = round8(width * (spec.zoom - 1));
    const ey = round8(height * (spec.zoom - 1));
    const left = floor8(ex / 2);
    const top = floor8(ey / 2);
    return { left, right: ex - left, top, bottom: ey - top };
  }
  if ('pan' in spec) {
    const side = PAN_SIDE[spec.pan];
    const horizontal = side === 'left' || side === 'right';
    const along = horizontal ? width : height;
    const across = horizontal ? height : width;
    const room = floor8(Math.min(maxSide - along, across * MAX_PAN_ASPECT - along));
    const grow = Math.min(round8(along * PAN_FRACTION), room);
    if (grow < 8) {
      throw new BadRequestError(
        `This ${width}×${height} picture can't be extended ${spec.pan} any further: the limit is ${maxSide} px a side and ${MAX_PAN_ASPECT}:1.`,
      );
    }
    return { left: 0, right: 0, top: 0, bottom: 0, [side]: grow };
  }
  return { left: spec.left, right: spec.right, top: spec.top, bottom: spec.bottom };
}

export interface OutpaintCanvas {
  canvas: RgbImage;
  /** PIL mode "L": 255 = paint (the new area and the overlap), 0 = keep. */
  mask: Uint8Array;
}

/**
 * The source at (left, top) of the larger canvas. The new area repeats the nearest source pixel (edge extension):
 * a plain UNet's blended inpaint sees matching colours across the seam, and the VAE encoding of the known region is
 * not pulled toward a flat fill. (A 9-channel inpaint UNet at strength 1 never sees the fill: the masked image is
 * zeroed there.) The mask also covers `overlap` source pixels along every extended side so the seam is repainted.
 */
export function outpaintCanvas(src: RgbImage, pads: OutpaintPads, overlap: number): OutpaintCanvas {
  const { width: w, height: h, rgb } = src;
  const cw = w + pads.left + pads.right;
  const ch = h + pads.top + pads.bottom;
  if (cw * ch > MAX_CANVAS_PIXELS) {
    throw new BadRequestError(`Outpainting this ${w}×${h} picture would make a ${cw}×${ch} canvas; the limit is ${MAX_CANVAS_PIXELS / 1e6} megapixels.`);
  }
  const out = new Uint8Array(cw * ch * 3);
  for (let y = 0; y < ch; y++) {
    const sy = Math.min(h - 1, Math.max(0, y - pads.top));
    for (let x = 0; x < cw; x++) {
      const sx = Math.min(w - 1, Math.max(0, x - pads.left));
      const s = (sy * w + sx) * 3;
      const d = (y * cw + x) * 3;
      out[d] = rgb[s]!;
      out[d + 1] = rgb[s + 1]!;
      out[d + 2] = rgb[s + 2]!;
    }
  }
  const mask = new Uint8Array(cw * ch).fill(255);
  const y0 = pads.top + (pads.top > 0 ? Math.min(overlap, h) : 0);
  const y1 = pads.top + h - (pads.bottom > 0 ? Math.min(overlap, h) : 0);
  const x0 = pads.left + (pads.left > 0 ? Math.min(overlap, w) : 0);
  const x1 = pads.left + w - (pads.right > 0 ? Math.min(overlap, w) : 0);
  for (let y = y0; y < y1; y++) mask.fill(0, y * cw + x0, y * cw + Math.max(x0, x1));
  return { canvas: { rgb: out, width: cw, height: ch }, mask };
}

/** "zoom out 2×", "pan left", "+32 left, +16 top": how the PNG parameters and notes name an outpaint. */
export function describeOutpaint(spec: OutpaintSpec): string {
  if ('zoom' in spec) return `zoom out ${spec.zoom}x`;
  if ('pan' in spec) return `pan ${spec.pan}`;
  return (['left', 'right', 'top', 'bottom'] as const).filter((k) => spec[k] > 0).map((k) => `+${spec[k]} ${k}`).join(', ');
}
