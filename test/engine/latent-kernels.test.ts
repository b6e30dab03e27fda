/**
 * The SIMD latent kernels give bit for bit what the per-element formulas give in plain JS (float32 ops for guidance,
 * float64 sums rounded once for the samplers' updates), signed zeros, subnormals, huge values and NaN included, at
 * lengths that are not whole 4-float groups and after the scratch memory has grown.
 */
import { describe, expect, it } from 'vitest';
import {
  bridgeInto, f32FormulaInto, guidanceInto, heunFirstInto, heunSecondInto, linearCombinationInto, MAX_TERMS, simdAvailable,
  x0UpdateInto, type F32FormulaName,
} from '../../src/engine/simd/latent-kernels.js';

const f32 = Math.fround;

/** A reproducible mix of ordinary and awkward float32 values. */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 8;
  }
  const special = [0, -0, 1e-40, -1e-42, 3e38, -3e38, NaN, Infinity, 1, -1];
  special.forEach((v, i) => (out[(i * 7 + seed) % n] = v));
  return out;
}

function bits(a: Float32Array): number[] {
  // NaN payloads are not specified by either side: compare NaN as one value
  return Array.from(new Uint32Array(Float32Array.from(a, (v) => (Number.isNaN(v) ? NaN : v)).buffer));
}

const LENGTHS = [1, 7, 1003, 32768 + 3];

describe('latent kernels', () => {
  it('run as WebAssembly SIMD on Node 20', () => {
    expect(simdAvailable).toBe(true);
  });

  it('guidance: u + g * (c - u), each op rounded to float32', () => {
    for (const n of LENGTHS) {
      const out = values(2 * n, n);
      const want = new Float32Array(n);
      const g = f32(7.5);
      for (let i = 0; i < n; i++) want[i] = out[i]! + f32(g * f32(out[n + i]! - out[i]!));
      expect(bits(guidanceInto(out, 7.5, new Float32Array(n)))).toEqual(bits(want));
    }
  });

  it('linear combinations of 1 to MAX_TERMS buffers, summed left to right in float64', () => {
    for (const n of LENGTHS) {
      for (let k = 1; k <= MAX_TERMS; k++) {
        const bufs = Array.from({ length: k }, (_, j) => values(n, 31 * j + k));
        const coef = Array.from({ length: k }, (_, j) => (j % 2 ? -1 : 1) * (0.37 + j / 3));
        const want = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          let acc = coef[0]! * bufs[0]![i]!;
          for (let j = 1; j < k; j++) acc = acc + coef[j]! * bufs[j]![i]!;
          want[i] = acc;
        }
        expect(bits(linearCombinationInto(coef, bufs, k, new Float32Array(n)))).toEqual(bits(want));
      }
    }
  });

  it('two-term combination divided before rounding (LMS derivative)', () => {
    const n = 1003;
    const [a, b] = [values(n, 1), values(n, 2)];
    const want = Float32Array.from({ length: n }, (_, i) => (0.3 * a[i]! - 1.7 * b[i]!) / 13.1);
    expect(bits(linearCombinationInto([0.3, -1.7], [a, b], 2, new Float32Array(n), 13.1))).toEqual(bits(want));
  });

  it('one-term combination divided before rounding (Brownian noise over its scale)', () => {
    for (const n of LENGTHS) {
      const a = values(n, 5);
      const want = Float32Array.from(a, (v) => (-1 * v) / 0.37);
      expect(bits(linearCombinationInto([-1], [a], 1, new Float32Array(n), 0.37))).toEqual(bits(want));
    }
  });

  it('Brownian bridge: left = ((w*a)*b) + (sd*z), right = w - left, each op rounded to float32', () => {
    for (const n of LENGTHS) {
      const [w, z] = [values(n, 3), values(n, 4)];
      const [a, b, sd] = [f32(0.731), f32(1 / 3.3), f32(0.4173)];
      const wantL = new Float32Array(n);
      const wantR = new Float32Array(n);
      for (let k = 0; k < n; k++) {
        wantL[k] = f32(f32(f32(w[k]! * a) * b) + f32(sd * z[k]!));
        wantR[k] = f32(w[k]! - wantL[k]!);
      }
      const [left, right] = [new Float32Array(n), new Float32Array(n)];
      bridgeInto(w, z, 0.731, 1 / 3.3, 0.4173, left, right);
      expect(bits(left)).toEqual(bits(wantL));
      expect(bits(right)).toEqual(bits(wantR));
    }
  });

  it('float32 formulas: every op rounded to float32, parameters rounded first', () => {
    const raw = [0.7311, -1.37, 0.0417, 1.9, 2.21];
    const q = raw.map(f32);
    // DPM++ SDE's denoised estimates (see the sampler), then its steps, written out as plain float32 JS
    const x0Eps = (s: number, m: number, c: number) => f32(s - f32(c * m));
    const x0V = (s: number, m: number, c: number, d: number) => f32(f32(m * c) + f32(s / d));
    const step = (from: number, x0: number, z: number) => f32(f32(f32(q[0]! * from) - f32(q[1]! * x0)) + f32(z * q[2]!));
    const last = (s: number, x0: number) => f32(s + f32(f32(f32(s - x0) / q[0]!) * q[1]!));
    const cases: Record<string, { params: number; fn: (...v: number[]) => number }> = {
      sdeStepEps: { params: 4, fn: (f, s, m, z) => step(f!, x0Eps(s!, m!, q[3]!), z!) },
      sdeStepV: { params: 5, fn: (f, s, m, z) => step(f!, x0V(s!, m!, q[3]!, q[4]!), z!) },
      sdeLastStepEps: { params: 3, fn: (s, m) => last(s!, x0Eps(s!, m!, q[2]!)) },
      sdeLastStepV: { params: 4, fn: (s, m) => last(s!, x0V(s!, m!, q[2]!, q[3]!)) },
      divide: { params: 1, fn: (a) => f32(a! / q[0]!) },
    };
    for (const n of LENGTHS) {
      const ins = [values(n, 11), values(n, 12), values(n, 13), values(n, 14)];
      for (const [name, { params, fn }] of Object.entries(cases)) {
        const k = fn.length;
        const want = Float32Array.from({ length: n }, (_, i) => fn(...ins.slice(0, k).map((a) => a[i]!)));
        const got = f32FormulaInto(name as F32FormulaName, ins.slice(0, k), raw.slice(0, params), new Float32Array(n));
        expect(bits(got), `${name} n=${n}`).toEqual(bits(want));
      }
    }
  });

  it('x0 update with and without clipping and noise', () => {
    for (const n of LENGTHS) {
      for (const clip of [null, 1]) {
        for (const noisy of [false, true]) {
          const [s, m, z] = [values(n, 3), values(n, 4), values(n, 5)];
          const u = { x0S: 1.3, x0M: -0.7, lo: clip === null ? -Infinity : -clip, hi: clip ?? Infinity, p: 0.9, q: 0.2, r: -0.11, e: 0.05 };
          const want = new Float32Array(n);
          for (let i = 0; i < n; i++) {
            let x0 = u.x0S * s[i]! + u.x0M * m[i]!;
            if (x0 < u.lo) x0 = u.lo;
            else if (x0 > u.hi) x0 = u.hi;
            want[i] = u.p * x0 + u.q * s[i]! + u.r * m[i]! + (noisy ? u.e * z[i]! : 0);
          }
          expect(bits(x0UpdateInto(u, s, m, noisy ? z : null, new Float32Array(n)))).toEqual(bits(want));
        }
      }
    }
  });

  it('Heun stages, the first storing its derivative as float32 but stepping with it unrounded', () => {
    for (const n of LENGTHS) {
      for (const clip of [null, 1]) {
        const [s, m, first, start] = [values(n, 6), values(n, 7), values(n, 8), values(n, 9)];
        const u = { a: 0.93, b: -0.41, clip, sigma: 3.7, dt: -0.29 };
        const wantDeriv = new Float32Array(n);
        const wantOut = new Float32Array(n);
        const want2 = new Float32Array(n);
        for (let k = 0; k < n; k++) {
          let x0 = u.a * s[k]! + u.b * m[k]!;
          if (clip !== null) x0 = Math.min(Math.max(x0, -clip), clip);
          const d = (s[k]! - x0) / u.sigma;
          wantDeriv[k] = d;
          wantOut[k] = s[k]! + d * u.dt;
          want2[k] = start[k]! + ((first[k]! + (s[k]! - x0) / u.sigma) / 2) * u.dt;
        }
        const [deriv, out, out2] = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
        heunFirstInto(u, s, m, deriv, out);
        heunSecondInto(u, s, m, start, first, out2);
        expect(bits(deriv)).toEqual(bits(wantDeriv));
        expect(bits(out)).toEqual(bits(wantOut));
        expect(bits(out2)).toEqual(bits(want2));
      }
    }
  });

  it('rejects operands of the wrong length', () => {
    expect(() => linearCombinationInto([1, 2], [new Float32Array(4), new Float32Array(5)], 2, new Float32Array(4))).toThrow(/length/);
    expect(() => guidanceInto(new Float32Array(6), 2, new Float32Array(4))).toThrow(/length/);
  });
});
