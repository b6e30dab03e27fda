/**
 * Pixels ⇄ model tensors, bit-compatible with diffusers 0.30.3's VaeImageProcessor (PIL input, torch float32):
 *   preprocess:  np.array(img).astype(float32) / 255 → 2x − 1                       (NCHW)
 *   postprocess: (x / 2 + 0.5).clamp(0, 1) in float32 → numpy (x * 255).round() → uint8   (HWC)
 *   masks:       mode "L" / 255 (float32), binarised: < 0.5 → 0, ≥ 0.5 → 1
 */

const f32 = Math.fround;

/** Value range of an image tensor: VAE inputs are [-1, 1]; ControlNet conditioning images stay [0, 1]. */
export type TensorRange = 'signed' | 'unit';

// Every uint8 maps to one float32, so both preprocess formulas are tables; building them once keeps the
// per-pixel loop free of arithmetic and makes the float32 rounding explicit.
const UNIT_LUT = new Float32Array(256);
const SIGNED_LUT = new Float32Array(256);
for (let v = 0; v < 256; v++) {
  const unit = f32(v / 255);
  UNIT_LUT[v] = unit;
  // 2*unit is exact in float32, so one rounding of (2*unit − 1) equals torch's two float32 ops.
  SIGNED_LUT[v] = f32(2 * unit - 1);
}

/** HWC uint8 RGB → NCHW float32 [1, 3, h, w]. */
export function imageToTensor(rgb: Uint8Array, width: number, height: number, range: TensorRange = 'signed'): Float32Array {
  const plane = width * height;
  if (rgb.length !== plane * 3) throw new RangeError(`imageToTensor: expected ${plane * 3} bytes, got ${rgb.length}`);
  const lut = range === 'signed' ? SIGNED_LUT : UNIT_LUT;
  const out = new Float32Array(plane * 3);
  for (let i = 0, p = 0; i < plane; i++, p += 3) {
    out[i] = lut[rgb[p] as number] as number;
    out[plane + i] = lut[rgb[p + 1] as number] as number;
    out[2 * plane + i] = lut[rgb[p + 2] as number] as number;
  }
  return out;
}

/** numpy's `round` on a float: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round sends halves up; pull the odd ones back down.
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Decoded VAE output (NCHW float32 [n, 3, h, w] in [-1, 1]) → one HWC uint8 RGB array per image, exactly as
 * diffusers' `postprocess(output_type="pil")` computes it.
 */
export function tensorToImages(sample: Float32Array, n: number, height: number, width: number): Uint8Array[] {
  const plane = width * height;
  if (sample.length !== n * 3 * plane) {
    throw new RangeError(`tensorToImages: expected ${n * 3 * plane} floats for [${n},3,${height},${width}], got ${sample.length}`);
  }
  const images: Uint8Array[] = [];
  for (let b = 0; b < n; b++) {
    const out = new Uint8Array(plane * 3);
    for (let c = 0; c < 3; c++) {
      const base = (b * 3 + c) * plane;
      for (let i = 0; i < plane; i++) {
        // x/2 is exact in float32 (barring subnormals); the +0.5 and the *255 each round to float32 as torch/numpy do.
        let v = f32((sample[base + i] as number) / 2 + 0.5);
        if (!(v > 0)) v = 0; // NaN too: numpy's uint8 cast of NaN is undefined, 0 is the usual outcome
        else if (v > 1) v = 1;
        out[i * 3 + c] = roundHalfEven(f32(v * 255));
      }
    }
    images.push(out);
  }
  return images;
}

/**
 * Mask (mode "L", white = repaint) → float32 [1, 1, h, w] of 0/1, as diffusers' inpaint mask processor
 * (`do_normalize=False, do_binarize=True, do_convert_grayscale=True`) produces after its resize.
 */
export function maskToTensor(mask: Uint8Array, width: number, height: number): Float32Array {
  const plane = width * height;
  if (mask.length !== plane) throw new RangeError(`maskToTensor: expected ${plane} bytes, got ${mask.length}`);
  const out = new Float32Array(plane);
  for (let i = 0; i < plane; i++) out[i] = (UNIT_LUT[mask[i] as number] as number) >= 0.5 ? 1 : 0;
  return out;
}
