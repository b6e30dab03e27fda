/**
 * One lane of torch's AVX2 float32 math (`aten/src/ATen/native/cpu/avx_mathfun.h`, Cephes-based `log256_ps` and
 * `sincos256_ps`), emulated on doubles so that `torch.randn` reproduces bit for bit.
 *
 * torch's x86-64 builds compile these intrinsics with FMA contraction, so some multiply-add pairs round once
 * (`fmaf`) and the rest round after every operation (`Math.fround`). Which pairs are fused follows the reference
 * README (`test/fixtures/reference/README.md`, "torch CPU RNG"); the goldens fail if one of them is wrong.
 *
 * Every function takes float32 values (doubles that `Math.fround` leaves unchanged) and returns float32 values.
 */

const f32 = Math.fround;

// Cephes constants, rounded to float32 exactly as the C compiler rounds the double literals in avx_mathfun.h.
const SQRTHF = f32(0.707106781186547524);
const LOG_P = [
  7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
  2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
].map(f32);
const LOG_P0 = LOG_P[0]!;
const LOG_P1 = LOG_P[1]!;
const LOG_P2 = LOG_P[2]!;
const LOG_P3 = LOG_P[3]!;
const LOG_P4 = LOG_P[4]!;
const LOG_P5 = LOG_P[5]!;
const LOG_P6 = LOG_P[6]!;
const LOG_P7 = LOG_P[7]!;
const LOG_P8 = LOG_P[8]!;
const LOG_Q1 = f32(-2.1219444e-4);
const LOG_Q2 = f32(0.693359375);

const FOPI = f32(1.27323954473516); // 4/pi
const MINUS_DP1 = f32(-0.78515625);
const MINUS_DP2 = f32(-2.4187564849853515625e-4);
const MINUS_DP3 = f32(-3.77489497744594108e-8);
const SINCOF_P0 = f32(-1.9515295891e-4);
const SINCOF_P1 = f32(8.3321608736e-3);
const SINCOF_P2 = f32(-1.6666654611e-1);
const COSCOF_P0 = f32(2.443315711809948e-5);
const COSCOF_P1 = f32(-1.388731625493765e-3);
const COSCOF_P2 = f32(4.166664568298827e-2);

// Bit view for the float32 exponent/mantissa split of log.
const f32Scratch = new Float32Array(1);
const f32Bits = new Uint32Array(f32Scratch.buffer);
/** The 23 fraction bits of float32 sqrt(1/2): a mantissa in [0.5, 1) is below it iff its fraction bits are. */
const SQRTHF_MANTISSA = floatBits(SQRTHF) & 0x7fffff;

function floatBits(x: number): number {
  f32Scratch[0] = x;
  return f32Bits[0]!;
}

/**
 * Single-rounding float32 `a*b + c`, like the hardware `vfmadd` the compiler emits.
 *
 * The float32 product is exact in double, so only the double sum rounds before `fround`. That double rounding
 * changes the float32 result only when the double sum lands exactly on a float32 midpoint while the exact sum does
 * not; then the TwoSum error term says on which side the exact sum lies.
 */
export function fmaf(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const r = f32(s);
  // s is a float32 midpoint exactly when 2s - r (the mirror of r about s) is a float32: otherwise the mirror falls
  // strictly between r and its neighbour
  const mirror = 2 * s - r;
  if (r === s || f32(mirror) !== mirror) return r;
  // TwoSum: the exact p + c is s + err. A true tie (err 0) is already rounded to even by fround; otherwise the
  // result is the neighbour on err's side. (Kept inline: a tie is common for log's last step, and a call is not.)
  const bv = s - p;
  const err = p - (s - bv) + (c - bv);
  return err !== 0 && err > 0 === mirror > r && Number.isFinite(mirror) ? mirror : r;
}

/**
 * `log256_ps` for one lane: natural log of a positive normal float32 (torch feeds it `1 - u` with u in [0, 1)).
 */
export function log256f(x: number): number {
  // split x into exponent e and mantissa m in [0.5, 1) by bit manipulation, as the kernel does
  f32Scratch[0] = x;
  const bits = f32Bits[0]!;
  f32Bits[0] = (bits & ~0x7f800000) | 0x3f000000;
  const mantissa = f32Scratch[0]!;
  // fold m into [sqrt(1/2) - 1, sqrt(2) - 1): below sqrt(1/2) use 2m - 1 and one less in the exponent. Like the
  // kernel's mask this is arithmetic, not a branch (m * 0 or m * 1 is exact): the branch would be unpredictable.
  const below = ((bits & 0x7fffff) - SQRTHF_MANTISSA) >>> 31;
  const e = (bits >>> 23) - 126 - below;
  const m = f32(f32(mantissa - 1) + mantissa * below);
  const z = f32(m * m);
  // degree-8 polynomial by Horner; each mul+add pair was contracted into an fma
  let y = fmaf(LOG_P0, m, LOG_P1);
  y = fmaf(y, m, LOG_P2);
  y = fmaf(y, m, LOG_P3);
  y = fmaf(y, m, LOG_P4);
  y = fmaf(y, m, LOG_P5);
  y = fmaf(y, m, LOG_P6);
  y = fmaf(y, m, LOG_P7);
  y = fmaf(y, m, LOG_P8);
  y = f32(y * m);
  // y*z + e*q1 (fused), minus z/2, then m + y + e*ln2_hi (fused); e*q1 and z/2 are separate float32 products
  y = fmaf(y, z, f32(e * LOG_Q1));
  y = f32(y - f32(z * 0.5));
  return fmaf(e, LOG_Q2, f32(m + y));
}

/**
 * `sincos256_ps` for one lane and a non-negative argument (torch passes theta = 2*pi*u in [0, 2*pi)).
 * Writes sin to out[0] and cos to out[1].
 */
export function sincos256f(x: number, out: Float64Array | Float32Array): void {
  // octant index: j = trunc(x * 4/pi), rounded up to even
  const j = ((Math.trunc(f32(x * FOPI)) | 0) + 1) & ~1;
  const y = j; // exact as float32 for every argument below 2^24
  // Cody-Waite reduction x - j*pi/4 in three fused steps
  let r = fmaf(y, MINUS_DP1, x);
  r = fmaf(y, MINUS_DP2, r);
  r = fmaf(y, MINUS_DP3, r);
  const z = f32(r * r);
  // cosine polynomial: 1 - z/2 + z^2 * P(z)
  let c = fmaf(fmaf(COSCOF_P0, z, COSCOF_P1), z, COSCOF_P2);
  c = f32(c * z);
  c = fmaf(c, z, -f32(z * 0.5));
  c = f32(c + 1);
  // sine polynomial: r + r*z*Q(z)
  let s = fmaf(fmaf(SINCOF_P0, z, SINCOF_P1), z, SINCOF_P2);
  s = f32(s * z);
  s = fmaf(s, r, r);
  // octants 2, 3, 6, 7 (mod 8) swap the polynomials; the signs follow bit 2 of j (sin) and of j-2 (cos). The kernel
  // selects with bit masks; multiplying by 0, 1 or -1 is as exact and avoids unpredictable branches.
  const swap = (j >>> 1) & 1;
  const keep = 1 - swap;
  out[0] = (s * keep + c * swap) * (1 - (j & 4) / 2);
  out[1] = (c * keep + s * swap) * (((j - 2) & 4) / 2 - 1);
}
