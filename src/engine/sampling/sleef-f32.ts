/**
 * torch's CPU float32 `exp` and `log` (AVX2 builds without MKL, e.g. Debian's torch 1.13: `Vectorized<float>::exp` /
 * `::log` call SLEEF 3.5's `Sleef_expf8_u10` / `Sleef_logf8_u10`, even for a single element), emulated bit for bit
 * on doubles. They are not correctly rounded (exp is off by one ulp for roughly one input in ten), and the DPM++ SDE
 * sampler feeds `exp(log(sigma))` into a Brownian tree that rounds its query times to 1e-6, where one ulp of a sigma
 * near 14 decides which noise is drawn.
 *
 * SLEEF's AVX2 helpers use FMA for every multiply-add (`vmla`, `vfma`, `vfmapn`, `vfmanp`); `fmaf` below rounds
 * those once, everything else rounds after each operation.
 */
import { fmaf } from './avx-mathfun.js';

const f32 = Math.fround;

const scratch = new Float32Array(1);
const bits = new Int32Array(scratch.buffer);

function floatBits(x: number): number {
  scratch[0] = x;
  return bits[0]!;
}

function bitsFloat(b: number): number {
  bits[0] = b;
  return scratch[0]!;
}

/** 2^q as a float32 built from its exponent bits (SLEEF's vpow2i), for q in the normal range. */
function pow2i(q: number): number {
  return bitsFloat((q + 0x7f) << 23);
}

/** _mm256_cvtps_epi32 under the default rounding mode: nearest, ties to even. */
function rintToInt(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const R_LN2F = f32(1.442695040888963407359924681001892137426645954152985934135449406931);
const L2UF = f32(0.693145751953125);
const L2LF = f32(1.428606765330187045e-6);
const EXP_POLY = Float64Array.from(
  [
    0.000198527617612853646278381, 0.00139304355252534151077271, 0.00833336077630519866943359,
    0.0416664853692054748535156, 0.166666671633720397949219, 0.5,
  ],
  f32,
);

/** torch.exp on a float32 CPU tensor (SLEEF xexpf, 1.0 ulp). */
export function torchExpF32(d: number): number {
  d = f32(d);
  if (Number.isNaN(d)) return NaN;
  const q = rintToInt(f32(d * R_LN2F));
  let s = fmaf(q, -L2UF, d);
  s = fmaf(q, -L2LF, s);
  let u = EXP_POLY[0]!;
  for (let i = 1; i < EXP_POLY.length; i++) u = fmaf(u, s, EXP_POLY[i]!);
  u = f32(1 + fmaf(f32(s * s), u, s));
  // vldexp2: two half-size scalings keep each power of two inside the float32 range
  const half = q >> 1;
  u = f32(f32(u * pow2i(half)) * pow2i(q - half));
  if (d < -104) return 0;
  if (d > 100) return Infinity;
  return u;
}

const LN2_HI = f32(0.69314718246459960938);
const LN2_LO = f32(-1.904654323148236017e-9);
const FOUR_THIRDS = f32(1 / 0.75);
const FLT_MIN = 2 ** -126;
const LOG_POLY = Float64Array.from([0.3027294874, 0.3996108174, 0.666669488], f32);

/** torch.log on a float32 CPU tensor (SLEEF xlogf_u1: double-float arithmetic, 1.0 ulp). */
export function torchLogF32(x: number): number {
  let d = f32(x);
  if (Number.isNaN(d) || d < 0) return NaN;
  if (d === 0) return -Infinity;
  if (d === Infinity) return Infinity;
  const tiny = d < FLT_MIN;
  if (tiny) d = f32(d * 2 ** 64);
  let e = ((floatBits(f32(d * FOUR_THIRDS)) >>> 23) & 0xff) - 0x7f;
  // vldexp3: m = d * 2^-e by adding to the exponent field, m in [0.75, 1.5)
  const m = bitsFloat(floatBits(d) + ((-e << 23) | 0));
  if (tiny) e -= 64;

  // s = (ln2_hi, ln2_lo) * e  (dfmul_vf2_vf2_vf)
  const sx0 = f32(LN2_HI * e);
  const sy0 = fmaf(LN2_LO, e, fmaf(LN2_HI, e, -sx0));

  // x = (m - 1) / (m + 1) as a double-float (dfadd2 twice, then dfdiv)
  const [nx, ny] = twoSumF32(-1, m);
  const [dx, dy] = twoSumF32(1, m);
  const t = f32(1 / dx);
  const qx = f32(nx * t);
  const u = fmaf(t, nx, -qx);
  const v = fmaf(-dy, t, fmaf(-dx, t, 1));
  const qy = fmaf(qx, v, fmaf(ny, t, u));

  const x2 = f32(qx * qx);
  let p = LOG_POLY[0]!;
  p = fmaf(p, x2, LOG_POLY[1]!);
  p = fmaf(p, x2, LOG_POLY[2]!);

  // s += 2x  (dfadd_vf2_vf2_vf2, |s| >= |2x| assumed as in SLEEF)
  const x2x = f32(qx * 2);
  const x2y = f32(qy * 2);
  const s1x = f32(sx0 + x2x);
  const s1y = f32(f32(f32(f32(sx0 - s1x) + x2x) + sy0) + x2y);
  // s += x^3 * p  (dfadd_vf2_vf2_vf)
  const cube = f32(f32(x2 * qx) * p);
  const s2x = f32(s1x + cube);
  const s2y = f32(f32(f32(s1x - s2x) + cube) + s1y);
  return f32(s2x + s2y);
}

/** SLEEF's dfadd2_vf2_vf_vf: the float32 sum and its exact rounding error (Knuth's TwoSum). */
function twoSumF32(a: number, b: number): [number, number] {
  const s = f32(a + b);
  const v = f32(s - a);
  return [s, f32(f32(a - f32(s - v)) + f32(b - v))];
}
