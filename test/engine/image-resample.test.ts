import { describe, expect, it } from 'vitest';
import { resizeGray, resizeRgb, resizeU8, type PilFilter } from '../../src/engine/image/pil-resample.js';
import { interpolateBicubic, interpolateNearest } from '../../src/engine/image/torch-interpolate.js';

const FILTERS: PilFilter[] = ['box', 'bilinear', 'hamming', 'bicubic', 'lanczos'];

function noise(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** Mirrors an interleaved image left-right. */
function mirror(data: Uint8Array, w: number, h: number, ch: number): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < ch; c++) {
    out[(y * w + (w - 1 - x)) * ch + c] = data[(y * w + x) * ch + c] as number;
  }
  return out;
}

describe('PIL-compatible resampling', () => {
  // 5x3 L image and the values Pillow 12.3 gives for it (Image.resize, same filters).
  const src = Uint8Array.from([0, 50, 100, 150, 200, 255, 0, 255, 0, 255, 10, 20, 30, 40, 250]);

  it('matches Pillow on a small L image (bicubic up, lanczos down and up)', () => {
    expect(Array.from(resizeGray(src, 5, 3, { width: 8, height: 5 }, 'bicubic'))).toEqual([
      0, 8, 57, 76, 110, 158, 186, 200, 100, 66, 35, 131, 152, 95, 167, 222, 255, 141, 3, 196, 196, 3, 141, 255,
      107, 63, 12, 91, 89, 17, 157, 255, 0, 3, 22, 14, 13, 36, 170, 255,
    ]);
    expect(Array.from(resizeGray(src, 5, 3, { width: 3, height: 2 }, 'lanczos'))).toEqual([74, 112, 173, 74, 51, 158]);
    expect(Array.from(resizeGray(src, 5, 3, { width: 9, height: 4 }, 'lanczos'))).toEqual([
      0, 0, 46, 71, 84, 124, 169, 192, 200, 184, 122, 20, 105, 222, 129, 62, 171, 234, 189, 123, 7, 80, 183, 63, 9,
      174, 255, 0, 0, 21, 23, 11, 0, 69, 197, 254,
    ]);
  });

  it('matches Pillow on RGB (channels resampled independently)', () => {
    const rgb = new Uint8Array(15 * 3);
    for (let i = 0; i < 15; i++) {
      const v = src[i] as number;
      rgb.set([v, 255 - v, v >> 1], i * 3);
    }
    expect(Array.from(resizeRgb(rgb, 5, 3, { width: 2, height: 2 }, 'bicubic'))).toEqual([
      83, 172, 41, 153, 102, 77, 61, 194, 31, 121, 134, 60,
    ]);
  });

  it('is the identity at the same size, for every filter', () => {
    const img = noise(17 * 9 * 3, 1);
    for (const f of FILTERS) {
      const out = resizeRgb(img, 17, 9, { width: 17, height: 9 }, f);
      expect(out).toEqual(img);
      expect(out).not.toBe(img);
    }
  });

  it('keeps constant images constant, up and down, for every filter', () => {
    for (const f of FILTERS) {
      for (const v of [0, 1, 77, 254, 255]) {
        for (const [w, h] of [[5, 3], [41, 29], [2, 17], [64, 64]] as const) {
          const img = new Uint8Array(w * h * 3).fill(v);
          const out = resizeU8(img, w, h, 3, { width: 23, height: 11 }, f);
          expect(out.every((x) => x === v)).toBe(true);
        }
      }
    }
  });

  it('commutes with mirroring up to the fixed-point rounding of the weights', () => {
    const img = noise(31 * 7 * 3, 2);
    // Not 'box': its window (−0.5, 0.5] is half-open, so Pillow's box resize is not mirror-symmetric either.
    for (const f of FILTERS.filter((x) => x !== 'box')) {
      for (const [tw, th] of [[12, 5], [64, 9], [31, 20]] as const) {
        const a = resizeRgb(mirror(img, 31, 7, 3), 31, 7, { width: tw, height: th }, f);
        const b = mirror(resizeRgb(img, 31, 7, { width: tw, height: th }, f), tw, th, 3);
        // Mirrored taps sum their weights in the opposite order, so a quantised weight can differ by one unit.
        expect(Math.max(...a.map((v, i) => Math.abs(v - (b[i] as number))))).toBeLessThanOrEqual(1);
      }
    }
  });

  it('box-downscales by 2 through a rounded horizontal pass, then a rounded vertical one', () => {
    const img = noise(8 * 6, 3);
    const out = resizeGray(img, 8, 6, { width: 4, height: 3 }, 'box');
    const px = (x: number, y: number) => img[y * 8 + x] as number;
    const half = (a: number, b: number) => Math.floor((a + b + 1) / 2); // (a + b)/2 rounded half up
    for (let y = 0; y < 3; y++) {
      for (let x = 0; x < 4; x++) {
        const top = half(px(2 * x, 2 * y), px(2 * x + 1, 2 * y));
        const bottom = half(px(2 * x, 2 * y + 1), px(2 * x + 1, 2 * y + 1));
        expect(out[y * 4 + x]).toBe(half(top, bottom));
      }
    }
  });

  it('stays in range with lanczos ringing on a hard edge (clipped, not wrapped)', () => {
    const w = 16;
    const img = new Uint8Array(w * 4);
    for (let y = 0; y < 4; y++) for (let x = 8; x < w; x++) img[y * w + x] = 255;
    const out = resizeGray(img, w, 4, { width: 37, height: 4 }, 'lanczos');
    expect(out[0]).toBe(0);
    expect(out[36]).toBe(255);
    // Monotone halves apart from the overshoot, which clips at 0 and 255 rather than wrapping.
    expect(Math.max(...out.subarray(0, 10))).toBeLessThan(10);
    expect(Math.min(...out.subarray(28, 37))).toBeGreaterThan(245);
  });

  it('rejects mismatched buffers and bad sizes', () => {
    expect(() => resizeRgb(new Uint8Array(10), 2, 2, { width: 1, height: 1 }, 'bicubic')).toThrow(RangeError);
    expect(() => resizeRgb(new Uint8Array(12), 2, 2, { width: 0, height: 1 }, 'bicubic')).toThrow(RangeError);
  });

  it('resizes a 1024² RGB image in well under a second', () => {
    const img = noise(1024 * 1024 * 3, 4);
    const t0 = performance.now();
    const out = resizeRgb(img, 1024, 1024, { width: 768, height: 512 }, 'lanczos');
    const ms = performance.now() - t0;
    expect(out.length).toBe(768 * 512 * 3);
    expect(ms).toBeLessThan(1500);
  });
});

describe('torch F.interpolate', () => {
  it('bicubic: a 7→16 impulse response equals the Keys (A = −0.75) weights', () => {
    const x = new Float32Array(7);
    x[3] = 1;
    const y = interpolateBicubic(x, { planes: 1, height: 1, width: 7 }, 1, 16);
    // dst 7: src = 7.5·7/16 − 0.5 = 2.78125, t = 0.78125; pixel 3 is the right neighbour, distance 1 − t = 0.21875:
    // ((−0.75 + 2)·0.21875 − (−0.75 + 3))·0.21875² + 1 = 0.905418395996…
    expect(y[7]).toBe(Math.fround(0.90541839599609375));
    expect(y[8]).toBe(y[7]); // symmetric about the impulse
    expect(Array.from(y.subarray(0, 3))).toEqual([0, 0, 0]);
  });

  it('bicubic downscale without antialias: hand-computed values, border clamped', () => {
    const x = Float32Array.from([0, 1, 2, 3]);
    // scale 2, src = 0.5 and 2.5, t = 0.5: weights (−0.09375, 0.59375, 0.59375, −0.09375); index −1 and 4 clamp.
    const y = interpolateBicubic(x, { planes: 1, height: 1, width: 4 }, 1, 2);
    expect(Array.from(y)).toEqual([0.40625, 2.59375]);
    // The same along the height axis, for two planes at once.
    const col = Float32Array.from([0, 1, 2, 3, 3, 2, 1, 0]);
    const z = interpolateBicubic(col, { planes: 2, height: 4, width: 1 }, 2, 1);
    expect(Array.from(z)).toEqual([0.40625, 2.59375, 2.59375, 0.40625]);
  });

  it('bicubic: identity at the same size, constants stay constant', () => {
    const x = Float32Array.from({ length: 30 }, (_, i) => Math.sin(i));
    expect(interpolateBicubic(x, { planes: 1, height: 5, width: 6 }, 5, 6)).toEqual(x);
    const c = new Float32Array(48 * 32).fill(0.25);
    expect(interpolateBicubic(c, { planes: 1, height: 48, width: 32 }, 13, 7).every((v) => Math.abs(v - 0.25) < 1e-6)).toBe(true);
  });

  it('nearest uses floor(dst·in/out)', () => {
    const x = Float32Array.from({ length: 10 }, (_, i) => i);
    expect(Array.from(interpolateNearest(x, { planes: 1, height: 1, width: 10 }, 1, 4))).toEqual([0, 2, 5, 7]);
    expect(Array.from(interpolateNearest(x, { planes: 1, height: 1, width: 10 }, 1, 3))).toEqual([0, 3, 6]);
    const y = Float32Array.from([1, 2, 3, 4]);
    expect(Array.from(interpolateNearest(y, { planes: 1, height: 2, width: 2 }, 4, 4))).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  });
});
