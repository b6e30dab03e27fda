/**
 * torch.nn.functional.interpolate on float32 NCHW maps, for the places where diffusers resizes tensors rather than
 * PIL images: depth maps (`mode="bicubic", align_corners=False`, depth2img's prepare_depth_map) and inpaint masks
 * to latent size (default `mode="nearest"`). Arithmetic follows ATen's CPU kernels in float32 (UpSample.h /
 * UpSampleKernel.cpp): scale = in/out as a float, cubic source index (dst + 0.5)·scale − 0.5, Keys cubic with
 * A = −0.75, neighbour indices clamped to the border, no antialiasing; the height pass wraps the width pass.
 */

const f32 = Math.fround;
const A = -0.75;

export interface PlaneShape {
  /** Number of H×W planes (batch × channels). */
  planes: number;
  height: number;
  width: number;
}

function cubicNear(x: number): number {
  // ((A + 2)·x − (A + 3))·x·x + 1, each operation rounded to float32 as the scalar_t kernel does
  return f32(f32(f32(f32(f32(f32(A + 2) * x) - (A + 3)) * x) * x) + 1);
}

function cubicFar(x: number): number {
  // ((A·x − 5A)·x + 8A)·x − 4A
  return f32(f32(f32(f32(f32(f32(A * x) - 5 * A) * x) + 8 * A) * x) - 4 * A);
}

interface Taps {
  index: Int32Array; // 4 clamped source indices per output position
  weight: Float32Array; // 4 weights per output position
}

function cubicTaps(inSize: number, outSize: number): Taps {
  const index = new Int32Array(outSize * 4);
  const weight = new Float32Array(outSize * 4);
  const scale = f32(inSize / outSize);
  for (let o = 0; o < outSize; o++) {
    // ATen evaluates scale·(dst + 0.5) − 0.5 in double (the 0.5 literals) and stores the result as float.
    const src = f32(scale * (o + 0.5) - 0.5);
    const i0 = Math.min(Math.floor(src), inSize - 1);
    const t = Math.min(Math.max(f32(src - i0), 0), 1);
    const t2 = f32(1 - t);
    weight[o * 4] = cubicFar(f32(t + 1));
    weight[o * 4 + 1] = cubicNear(t);
    weight[o * 4 + 2] = cubicNear(t2);
    weight[o * 4 + 3] = cubicFar(f32(t2 + 1));
    for (let k = 0; k < 4; k++) index[o * 4 + k] = Math.max(Math.min(i0 - 1 + k, inSize - 1), 0);
  }
  return { index, weight };
}

/** `F.interpolate(x, size=(outH, outW), mode="bicubic", align_corners=False)` for float32 NCHW data. */
export function interpolateBicubic(src: Float32Array, shape: PlaneShape, outH: number, outW: number): Float32Array {
  const { planes, height, width } = shape;
  if (src.length !== planes * height * width) {
    throw new RangeError(`interpolateBicubic: expected ${planes * height * width} floats, got ${src.length}`);
  }
  const ty = cubicTaps(height, outH);
  const tx = cubicTaps(width, outW);
  const out = new Float32Array(planes * outH * outW);
  const rows = new Float32Array(4);
  for (let p = 0; p < planes; p++) {
    const inBase = p * height * width;
    const outBase = p * outH * outW;
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        for (let k = 0; k < 4; k++) {
          const row = inBase + (ty.index[oy * 4 + k] as number) * width;
          let acc = 0;
          for (let j = 0; j < 4; j++) {
            acc = f32(acc + f32((src[row + (tx.index[ox * 4 + j] as number)] as number) * (tx.weight[ox * 4 + j] as number)));
          }
          rows[k] = acc;
        }
        let acc = 0;
        for (let k = 0; k < 4; k++) acc = f32(acc + f32((rows[k] as number) * (ty.weight[oy * 4 + k] as number)));
        out[outBase + oy * outW + ox] = acc;
      }
    }
  }
  return out;
}

function nearestIndices(inSize: number, outSize: number): Int32Array {
  const idx = new Int32Array(outSize);
  const scale = f32(inSize / outSize);
  for (let o = 0; o < outSize; o++) idx[o] = Math.min(Math.floor(f32(o * scale)), inSize - 1);
  return idx;
}

/** `F.interpolate(x, size=(outH, outW))` (mode "nearest", the legacy floor rule) for float32 NCHW data. */
export function interpolateNearest(src: Float32Array, shape: PlaneShape, outH: number, outW: number): Float32Array {
  const { planes, height, width } = shape;
  if (src.length !== planes * height * width) {
    throw new RangeError(`interpolateNearest: expected ${planes * height * width} floats, got ${src.length}`);
  }
  const iy = nearestIndices(height, outH);
  const ix = nearestIndices(width, outW);
  const out = new Float32Array(planes * outH * outW);
  for (let p = 0; p < planes; p++) {
    const inBase = p * height * width;
    const outBase = p * outH * outW;
    for (let oy = 0; oy < outH; oy++) {
      const row = inBase + (iy[oy] as number) * width;
      const o = outBase + oy * outW;
      for (let ox = 0; ox < outW; ox++) out[o + ox] = src[row + (ix[ox] as number)] as number;
    }
  }
  return out;
}
