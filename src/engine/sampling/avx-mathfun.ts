/**
 * torch's AVX2 float32 math (`aten/src/ATen/native/cpu/avx_mathfun.h`, the Cephes-based `log256_ps` and
 * `sincos256_ps`), emulated on doubles so that `torch.randn` reproduces bit for bit.
 *
 * torch's x86-64 builds compile these intrinsics with FMA contraction, so some multiply-add pairs round once
 * (`fmaf`) and the rest round after every operation (`Math.fround`). Which pairs are fused follows the reference
 * README (`test/fixtures/reference/README.md`, "torch CPU RNG"); the goldens fail if one of them is wrong.
 *
 * Like the 8-wide originals, the functions work on lanes: arrays of float32 values (doubles that `Math.fround`
 * leaves unchanged) processed by one loop. That shape is also what V8 needs to make this fast: the float32 steps
 * are inlined into the loop and no double gets boxed, which a call per value would cost.
 */

const f32 = Math.fround;

// Cephes constants of avx_mathfun.h, rounded to float32 as the C compiler rounds its double literals. The
// polynomials are tables walked by small loops, which keeps the number of inlined fmaf copies (and so V8's
// inlining budget) small. Exported for the WebAssembly SIMD form of randn (simd/randn-kernels.ts).
export const LOG_POLY = Float64Array.from(
  [
    7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
    2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
  ],
  f32,
);
export const LOG_Q1 = f32(-2.1219444e-4);
export const LOG_Q2 = f32(0.693359375);
export const FOPI = f32(1.27323954473516); // 4/pi
// Cody-Waite split of pi/4, negated (minus_cephes_DP1..3): -201 * 2^-8, -2029 * 2^-23 and a full float32.
export const MINUS_DP1 = f32(-0.78515625);
export const MINUS_DP2 = f32(-2.4187564849853515625e-4);
export const MINUS_DP3 = f32(-3.77489497744594108e-8);
/** coscof_p0..p2 and sincof_p0..p2, interleaved so that one loop evaluates both polynomials. */
export const COS_SIN_POLY = Float64Array.from(
  [2.443315711809948e-5, -1.9515295891e-4, -1.388731625493765e-3, 8.3321608736e-3, 4.166664568298827e-2, -1.6666654611e-1],
  f32,
);
/** Bit view for the float32 exponent/mantissa split of log. */
const f32Scratch = new Float32Array(1);
const f32Bits = new Uint32Array(f32Scratch.buffer);
/** The 23 fraction bits of float32 sqrt(1/2) (cephes_SQRTHF): a mantissa in [0.5, 1) is below it iff these are. */
f32Scratch[0] = 0.707106781186547524;
export const SQRTHF_FRACTION = f32Bits[0]! & 0x7fffff;

/**
 * Single-rounding float32 `a*b + c`, like the hardware `vfmadd` the compiler emits.
 *
 * The float32 product is exact in double, so only the double sum rounds before `fround`. That double rounding
 * changes the float32 result only when the double sum lands exactly on a float32 midpoint while the exact sum does
 * not; then the TwoSum error term says on which side the exact sum lies. A result beyond the float32 range is
 * infinite. (No calls in here, and little code: V8 then inlines it everywhere and keeps every value unboxed.)
 */
export function fmaf(a: number, b: number, c: number): number {
  const round = Math.fround;
  const p = a * b;
  const s = p + c;
  const r = round(s);
  // s is a float32 midpoint exactly when 2s - r (the mirror of r about s) is a float32: otherwise the mirror falls
  // strictly between r and its neighbour
  const mirror = 2 * s - r;
  if (r === s || round(mirror) !== mirror || r - r !== 0) return r;
  // TwoSum: the exact sum is s + err. A true tie (err 0) is already rounded to even by fround; otherwise the result
  // is the neighbour on err's side.
  const t = s - p;
  const err = p - (s - t) + (c - t);
  return err !== 0 && err > 0 === mirror > r ? mirror : r;
}

/** A float32 multiply-add that rounds once (as `vfmadd`): `fmaf`, or a cheaper equivalent on a known input set. */
type Fma = (a: number, b: number, c: number) => number;

/**
 * `fmaf` without its midpoint correction: fround(a*b + c). Over the inputs torch's randn gives the lane functions
 * (1 - u and 2*pi*u for the 2^24 uniforms u = k * 2^-24) the double sum does land on float32 midpoints, but the
 * correction never changes a result: test/engine/torch-rng.test.ts checks the whole input set against `fmaf`.
 * Skipping it makes randn nearly twice as fast (16k values: 1.4 → 0.7 ms on the 2-core reference VM).
 */
function roundedMulAdd(a: number, b: number, c: number): number {
  return Math.fround(a * b + c);
}

/** torch's log256_ps and sincos256_ps over lanes, with `fma` for the contracted multiply-adds. */
export function avxLaneFunctions(fma: Fma): {
  log256Lanes: (x: Float64Array, out: Float64Array, count: number) => void;
  sincos256Lanes: (x: Float64Array, sin: Float64Array, cos: Float64Array, count: number) => void;
} {
  /**
   * `log256_ps` over lanes: out[k] = log(x[k]) for k < count, for positive normal float32 inputs (torch feeds it
   * 1 - u with u in [0, 1)). `out` may be `x`.
   */
  function log256Lanes(x: Float64Array, out: Float64Array, count: number): void {
    const round = Math.fround;
    const poly = LOG_POLY;
    const scratch = f32Scratch;
    const scratchBits = f32Bits;
    const q1 = LOG_Q1;
    const q2 = LOG_Q2;
    const sqrtHalf = SQRTHF_FRACTION;
    for (let k = 0; k < count; k++) {
      // split x into exponent e and mantissa m in [0.5, 1) by bit manipulation, as the kernel does
      scratch[0] = x[k]!;
      const bits = scratchBits[0]!;
      scratchBits[0] = (bits & ~0x7f800000) | 0x3f000000;
      const mantissa = scratch[0]!;
      // fold m into [sqrt(1/2) - 1, sqrt(2) - 1): below sqrt(1/2) use 2m - 1 and one less in the exponent. Like the
      // kernel's mask this is arithmetic, not a branch (m * 0 or m * 1 is exact): a branch would be unpredictable.
      const below = ((bits & 0x7fffff) - sqrtHalf) >>> 31;
      const e = (bits >>> 23) - 126 - below;
      const m = round(round(mantissa - 1) + mantissa * below);
      const z = round(m * m);
      // degree-8 polynomial by Horner; each mul+add pair was contracted into an fma
      let y = poly[0]!;
      for (let i = 1; i < 9; i++) y = fma(y, m, poly[i]!);
      y = round(y * m);
      // y*z + e*q1 (fused), minus z/2, then m + y + e*q2 (fused); e*q1 and z/2 are separate float32 products
      y = fma(y, z, round(e * q1));
      y = round(y - round(z * 0.5));
      out[k] = fma(e, q2, round(m + y));
    }
  }

  /**
   * `sincos256_ps` over lanes: sin[k] and cos[k] of x[k] for k < count, for float32 inputs in [0, 8192) (Cephes' own
   * range; torch passes theta = 2*pi*u in [0, 2*pi)). `sin` or `cos` may be `x`.
   */
  function sincos256Lanes(x: Float64Array, sin: Float64Array, cos: Float64Array, count: number): void {
    const round = Math.fround;
    const dp1 = MINUS_DP1;
    const dp2 = MINUS_DP2;
    const dp3 = MINUS_DP3;
    const poly = COS_SIN_POLY;
    const fourOverPi = FOPI;
    for (let k = 0; k < count; k++) {
      const xk = x[k]!;
      // octant index: j = trunc(x * 4/pi), rounded up to even
      const j = ((Math.trunc(round(xk * fourOverPi)) | 0) + 1) & ~1;
      // Cody-Waite reduction r = x - j*pi/4 in three fused steps. Here each double sum j*DP + r is already exact, so
      // one fround of it is the fused result and needs no midpoint check: j is an even integer below 2^14 and x >= pi/4
      // whenever j > 0, so the first sum is a multiple of 2^-24 below 2^14, the next two multiples of 2^-24 and
      // 2^-47 below 4.
      const r = round(j * dp3 + round(j * dp2 + round(j * dp1 + xk)));
      const z = round(r * r);
      // cosine 1 - z/2 + z^2 * P(z) and sine r + r*z*Q(z), both by Horner with fused steps
      let c = poly[0]!;
      let s = poly[1]!;
      for (let i = 2; i < 6; i += 2) {
        c = fma(c, z, poly[i]!);
        s = fma(s, z, poly[i + 1]!);
      }
      c = round(c * z);
      c = fma(c, z, -round(z * 0.5));
      c = round(c + 1);
      s = round(s * z);
      s = fma(s, r, r);
      // octants 2, 3, 6, 7 (mod 8) swap the polynomials; the signs follow bit 2 of j (sin) and of j-2 (cos). The
      // kernel selects with bit masks; multiplying by 0, 1 or -1 is as exact and avoids unpredictable branches.
      const swap = (j >>> 1) & 1;
      const keep = 1 - swap;
      sin[k] = (s * keep + c * swap) * (1 - (j & 4) / 2);
      cos[k] = (c * keep + s * swap) * (((j - 2) & 4) / 2 - 1);
    }
  }
  return { log256Lanes, sincos256Lanes };
}

/** The lane functions randn uses, exact on its inputs (see roundedMulAdd). */
export const { log256Lanes, sincos256Lanes } = avxLaneFunctions(roundedMulAdd);
