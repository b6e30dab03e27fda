import { describe, expect, it } from 'vitest';
import { rgbToGray } from '../../src/engine/image/gray.js';
import { imageToTensor, maskToTensor, roundHalfEven, tensorToImages } from '../../src/engine/image/tensor.js';

describe('imageToTensor', () => {
  it('maps HWC uint8 to NCHW float32 x/255*2-1', () => {
    const rgb = Uint8Array.from([0, 128, 255, 10, 20, 30]); // 2x1
    const t = imageToTensor(rgb, 2, 1);
    expect(t.length).toBe(6);
    // channel planes: R = [0, 10], G = [128, 20], B = [255, 30]
    expect(t[0]).toBe(-1);
    expect(t[2]).toBe(Math.fround(2 * Math.fround(128 / 255) - 1));
    expect(t[4]).toBe(1);
    expect(t[1]).toBe(Math.fround(2 * Math.fround(10 / 255) - 1));
    expect(t[5]).toBe(Math.fround(2 * Math.fround(30 / 255) - 1));
  });

  it('keeps [0,1] for the ControlNet conditioning image', () => {
    const t = imageToTensor(Uint8Array.from([0, 51, 255]), 1, 1, 'unit');
    expect(Array.from(t)).toEqual([0, Math.fround(0.2), 1]);
  });

  it('checks the buffer size', () => {
    expect(() => imageToTensor(new Uint8Array(5), 2, 1)).toThrow(RangeError);
  });
});

describe('tensorToImages', () => {
  /** The decoder output x whose value (x/2 + 0.5)·255 lands exactly on k + 0.5. */
  function halfway(k: number): number {
    for (let x = Math.fround(((k + 0.5) / 255 - 0.5) * 2), i = 0; i < 64; i++) {
      const v = Math.fround(Math.fround(Math.fround(x / 2) + 0.5) * 255);
      if (v === k + 0.5) return x;
      x = v < k + 0.5 ? nextUp(x) : nextDown(x);
    }
    return NaN;
  }
  const buf = new Float32Array(1);
  const bits = new Int32Array(buf.buffer);
  const nextUp = (x: number) => {
    buf[0] = x;
    bits[0] = (bits[0] as number) + (x >= 0 ? 1 : -1);
    return buf[0] as number;
  };
  const nextDown = (x: number) => {
    buf[0] = x;
    bits[0] = (bits[0] as number) + (x >= 0 ? -1 : 1);
    return buf[0] as number;
  };

  it('rounds exact halves to even, as numpy does', () => {
    expect(roundHalfEven(0.5)).toBe(0);
    expect(roundHalfEven(1.5)).toBe(2);
    expect(roundHalfEven(2.5)).toBe(2);
    expect(roundHalfEven(253.5)).toBe(254);
    expect(roundHalfEven(254.5)).toBe(254);
    expect(roundHalfEven(2.5000001)).toBe(3);
    // Not every k + 0.5 is reachable through the float32 ops; keep those that are (dozens, both parities).
    const found = Array.from({ length: 255 }, (_, k) => ({ k, x: halfway(k) })).filter((e) => Number.isFinite(e.x));
    const ks = found.map((e) => e.k);
    const xs = found.map((e) => e.x);
    expect(ks.filter((k) => k % 2 === 0).length).toBeGreaterThan(20);
    expect(ks.filter((k) => k % 2 === 1).length).toBeGreaterThan(20);
    // One image 1 pixel wide, ks.length rows; the same values in all three channels.
    const h = ks.length;
    const sample = new Float32Array(3 * h);
    for (let c = 0; c < 3; c++) sample.set(xs, c * h);
    const [img] = tensorToImages(sample, 1, h, 1);
    const red = Array.from({ length: h }, (_, i) => img?.[i * 3]);
    expect(red).toEqual(ks.map((k) => (k % 2 === 0 ? k : k + 1)));
  });

  it('clamps, converts CHW to HWC and splits the batch', () => {
    // n = 2, 1x2 images
    const s = Float32Array.from([
      -1, 1, /* G */ 0, 3, /* B */ -5, Math.fround(0.5),
      1, 1, /* G */ 1, 1, /* B */ 1, -1,
    ]);
    const [a, b] = tensorToImages(s, 2, 1, 2);
    // 0 → 0.5·255 = 127.5 → 128 (even); 0.5 → 0.75·255 = 191.25 → 191
    expect(Array.from(a ?? [])).toEqual([0, 128, 0, 255, 255, 191]);
    expect(Array.from(b ?? [])).toEqual([255, 255, 255, 255, 255, 0]);
  });

  it('is the inverse of imageToTensor for every byte value', () => {
    const rgb = Uint8Array.from({ length: 256 * 3 }, (_, i) => i % 256);
    const back = tensorToImages(imageToTensor(rgb, 256, 1), 1, 1, 256)[0];
    expect(back).toEqual(rgb);
  });

  it('checks the sample length', () => {
    expect(() => tensorToImages(new Float32Array(10), 1, 2, 2)).toThrow(RangeError);
  });
});

describe('maskToTensor', () => {
  it('binarises at 0.5 of the 0..1 scale (127 → 0, 128 → 1)', () => {
    const t = maskToTensor(Uint8Array.from([0, 127, 128, 255]), 2, 2);
    expect(Array.from(t)).toEqual([0, 0, 1, 1]);
  });
});

describe('rgbToGray', () => {
  it('is PIL convert("L"): exact on gray, 601-2 weights in 16-bit fixed point', () => {
    expect(Array.from(rgbToGray(Uint8Array.from([0, 0, 0, 77, 77, 77, 255, 255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 200, 30])))).toEqual([
      0, 77, 255, 76, 150, 29, 124,
    ]);
  });
});
