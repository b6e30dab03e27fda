/**
 * torch's float32 Box-Muller (`normal_fill_16_AVX2`, emulated in plain JS by torch-rng's `boxMullerBlocks` on top of
 * avx-mathfun's lane functions) as a WebAssembly SIMD function, for randn-kernels.ts.
 *
 * Bit-identical to the JS, which is the spec (pinned to torch's goldens): every step the JS rounds after one IEEE
 * float32 operation is one f32x4 operation here; every multi-operation expression the JS evaluates in double before
 * `Math.fround` (the `roundedMulAdd` forms of the fused multiply-adds, the Cody-Waite reduction, the sqrt) runs in
 * f64x2 halves with the same operations in the same order, then demotes (round to nearest even, as `fround`).
 * Values that are already float32 ride in the f64x2 halves between such steps (demote + promote = `fround`).
 * The only liberty taken is with signed zeros of intermediate sines/cosines: the final `+ 0` maps every zero
 * product to +0, as the JS does.
 */
import {
  COS_SIN_POLY, FOPI, LOG_POLY, LOG_Q1, LOG_Q2, MINUS_DP1, MINUS_DP2, MINUS_DP3, SQRTHF_FRACTION,
} from '../sampling/avx-mathfun.js';
import { I32, JOIN_LOW_HALVES, V128, loopWhileBelow, op, simd, splat, type ValType, type WasmFunction } from './wasm-encoding.js';

// ─── constants ──────────────────────────────────────────────────────────────────────────────────────────────────

const { f32x4, f64x2, i32x4 } = splat;

/** The vector constants the kernel keeps in locals, with their lane values. */
const CONSTANTS = {
  oneF: f32x4(1),
  zeroF: f32x4(0),
  twoPi: f32x4(Math.fround(2 * Math.PI)),
  fourOverPi: f32x4(FOPI),
  q1: f32x4(LOG_Q1),
  halfF: f32x4(0.5),
  notExponent: i32x4(~0x7f800000),
  halfExponent: i32x4(0x3f000000),
  fraction: i32x4(0x7fffff),
  sqrtHalf: i32x4(SQRTHF_FRACTION),
  i126: i32x4(126),
  iOne: i32x4(1),
  iNotOne: i32x4(~1),
  iTwo: i32x4(2),
  sign: i32x4(0x80000000 | 0),
  q2: f64x2(LOG_Q2),
  minusTwo: f64x2(-2),
  oneD: f64x2(1),
  halfD: f64x2(0.5),
  dp1: f64x2(MINUS_DP1),
  dp2: f64x2(MINUS_DP2),
  dp3: f64x2(MINUS_DP3),
  ...Object.fromEntries(Array.from(LOG_POLY, (v, i) => [`log${i}`, f64x2(v)])),
  ...Object.fromEntries(Array.from(COS_SIN_POLY, (v, i) => [`cs${i}`, f64x2(v)])),
} as Record<string, number[]>;

// ─── Box-Muller kernel ──────────────────────────────────────────────────────────────────────────────────────────

/** Lanes 2, 3 of a vector moved to lanes 0, 1 (for the f64x2 conversions, which read the low half). */
const HIGH_TO_LOW = simd.shuffle([8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]);
/** `Math.fround` of both f64 lanes, staying f64. */
const ROUND = [...simd.f32x4DemoteF64x2Zero, ...simd.f64x2PromoteLowF32x4];

type Half = 0 | 1;

/**
 * boxMuller(ptr, blocks): the 16-blocks at byte offset ptr, in place. Per block and per group of 4 lanes (two
 * groups: byte offsets 0 and 16), u1 = 1 - d[lane] and u2 = d[lane + 8] give d[lane] = r*cos and d[lane + 8] = r*sin.
 */
export function boxMuller(): WasmFunction {
  const PTR = 0, BLOCKS = 1, END = 2;
  const locals: ValType[] = [I32];
  const local = (): number => 2 + locals.push(V128) - 1;
  const k: Record<string, number> = {};
  const init: number[] = [];
  for (const [name, bytes] of Object.entries(CONSTANTS)) {
    k[name] = local();
    init.push(...simd.const(bytes), ...op.set(k[name]!));
  }
  const c = (name: string): number[] => op.get(k[name]!);
  const [U1, THETA, M, Z, E, EQ1, ZH, J, R, COS, SIN, SWAP, BELOW] = [
    local(), local(), local(), local(), local(), local(), local(), local(), local(), local(), local(), local(), local(),
  ];
  // per-half float64 locals: [lo, hi]
  type Pair = [number, number];
  const pair = (): Pair => [local(), local()];
  const [m, z, y, t, x, r, cz, s] = [pair(), pair(), pair(), pair(), pair(), pair(), pair(), pair()];
  const g = op.get;
  /** Lanes 2h, 2h+1 of an f32x4 local as f64x2. */
  const widen = (v: number, h: Half): number[] => (h === 0 ? [...g(v)] : [...g(v), ...g(v), ...HIGH_TO_LOW]).concat(simd.f64x2PromoteLowF32x4);
  const set = (l: Pair, h: Half, code: number[]): number[] => [...code, ...op.set(l[h])];
  /** f64x2 `fround(a*b + c)` over locals/constants, the roundedMulAdd of the JS. */
  const mulAdd = (a: number[], b: number[], cc: number[]): number[] => [...a, ...b, ...simd.f64x2Mul, ...cc, ...simd.f64x2Add, ...ROUND];
  const join = (l: Pair): number[] => [
    ...g(l[0]), ...simd.f32x4DemoteF64x2Zero, ...g(l[1]), ...simd.f32x4DemoteF64x2Zero, ...JOIN_LOW_HALVES,
  ];

  /** log256_ps of U1 for one half; leaves r = fround(sqrt(-2 * log)) in r[h]. */
  const logHalf = (h: Half): number[] => {
    const code: number[] = [
      ...set(m, h, widen(M, h)),
      ...set(z, h, widen(Z, h)),
      ...set(y, h, mulAdd(c('log0'), g(m[h]), c('log1'))),
    ];
    for (let i = 2; i < 9; i++) code.push(...set(y, h, mulAdd(g(y[h]), g(m[h]), c(`log${i}`))));
    code.push(
      ...set(y, h, [...g(y[h]), ...g(m[h]), ...simd.f64x2Mul, ...ROUND]), // round(y * m)
      ...set(y, h, mulAdd(g(y[h]), g(z[h]), widen(EQ1, h))), // fma(y, z, round(e * q1))
      ...set(y, h, [...g(y[h]), ...widen(ZH, h), ...simd.f64x2Sub, ...ROUND]), // round(y - round(z * 0.5))
      ...set(y, h, [...g(m[h]), ...g(y[h]), ...simd.f64x2Add, ...ROUND]), // round(m + y)
      ...set(y, h, mulAdd(widen(E, h), c('q2'), g(y[h]))), // fma(e, q2, round(m + y))
      // r = fround(sqrt(-2 * log)), in double as the JS
      ...set(r, h, [...c('minusTwo'), ...g(y[h]), ...simd.f64x2Mul, ...simd.f64x2Sqrt]),
    );
    return code;
  };

  /** sincos256_ps of THETA for one half: the polynomials' cosine in cz[h] and sine in s[h] (before the octant fix-up). */
  const sincosHalf = (h: Half): number[] => {
    const jf = [...(h === 0 ? g(J) : [...g(J), ...g(J), ...HIGH_TO_LOW]), ...simd.f64x2ConvertLowI32x4S];
    return [
      ...set(x, h, jf),
      // Cody-Waite: r = round(j*dp3 + round(j*dp2 + round(j*dp1 + theta)))
      ...set(t, h, mulAdd(g(x[h]), c('dp1'), widen(THETA, h))),
      ...set(t, h, mulAdd(g(x[h]), c('dp2'), g(t[h]))),
      ...set(t, h, mulAdd(g(x[h]), c('dp3'), g(t[h]))),
      ...set(z, h, [...g(t[h]), ...g(t[h]), ...simd.f64x2Mul, ...ROUND]),
      ...set(cz, h, mulAdd(c('cs0'), g(z[h]), c('cs2'))),
      ...set(s, h, mulAdd(c('cs1'), g(z[h]), c('cs3'))),
      ...set(cz, h, mulAdd(g(cz[h]), g(z[h]), c('cs4'))),
      ...set(s, h, mulAdd(g(s[h]), g(z[h]), c('cs5'))),
      ...set(cz, h, [...g(cz[h]), ...g(z[h]), ...simd.f64x2Mul, ...ROUND]), // round(c * z)
      // fma(c, z, -round(z * 0.5)): a + (-b) is a - b in IEEE arithmetic
      ...set(cz, h, [...g(cz[h]), ...g(z[h]), ...simd.f64x2Mul, ...g(z[h]), ...c('halfD'), ...simd.f64x2Mul, ...ROUND, ...simd.f64x2Sub, ...ROUND]),
      ...set(cz, h, [...g(cz[h]), ...c('oneD'), ...simd.f64x2Add, ...ROUND]), // round(c + 1)
      ...set(s, h, [...g(s[h]), ...g(z[h]), ...simd.f64x2Mul, ...ROUND]), // round(s * z)
      ...set(s, h, mulAdd(g(s[h]), g(t[h]), g(t[h]))), // fma(s, r, r)
    ];
  };

  const group = (offset: number): number[] => [
    // u1 = 1 - d (exact), theta = fround(2pi * u2)
    ...c('oneF'), ...g(PTR), ...simd.load(offset), ...simd.f32x4Sub, ...op.set(U1),
    ...c('twoPi'), ...g(PTR), ...simd.load(offset + 32), ...simd.f32x4Mul, ...op.set(THETA),
    // log: mantissa in [0.5, 1) and exponent by bit manipulation; below sqrt(1/2): 2m - 1 and one less in the exponent
    ...g(U1), ...c('notExponent'), ...simd.and, ...c('halfExponent'), ...simd.or, ...op.set(M), // the mantissa
    ...g(U1), ...c('fraction'), ...simd.and, ...c('sqrtHalf'), ...simd.i32x4LtS, ...op.set(BELOW), // -1 where below
    ...g(U1), ...op.i32Const(23), ...simd.i32x4ShrU, ...c('i126'), ...simd.i32x4Sub, ...g(BELOW), ...simd.i32x4Add,
    ...simd.f32x4ConvertI32x4S, ...op.set(E),
    ...g(M), ...c('oneF'), ...simd.f32x4Sub, ...g(M), ...g(BELOW), ...simd.and, ...simd.f32x4Add, ...op.set(M),
    ...g(M), ...g(M), ...simd.f32x4Mul, ...op.set(Z),
    ...g(E), ...c('q1'), ...simd.f32x4Mul, ...op.set(EQ1),
    ...g(Z), ...c('halfF'), ...simd.f32x4Mul, ...op.set(ZH),
    ...logHalf(0), ...logHalf(1),
    ...g(r[0]), ...simd.f32x4DemoteF64x2Zero, ...g(r[1]), ...simd.f32x4DemoteF64x2Zero, ...JOIN_LOW_HALVES, ...op.set(R),
    // sincos: octant j = (trunc(theta * 4/pi) + 1) & ~1
    ...g(THETA), ...c('fourOverPi'), ...simd.f32x4Mul, ...simd.i32x4TruncSatF32x4S, ...c('iOne'), ...simd.i32x4Add,
    ...c('iNotOne'), ...simd.and, ...op.set(J),
    ...sincosHalf(0), ...sincosHalf(1),
    ...join(cz), ...op.set(COS),
    ...join(s), ...op.set(SIN),
    // octants 2, 3 (mod 4) swap the polynomials: bit 1 of j as a lane mask
    ...g(J), ...op.i32Const(30), ...simd.i32x4Shl, ...op.i32Const(31), ...simd.i32x4ShrS, ...op.set(SWAP),
    // d[lane] = fround(r * cos) + 0 with cos negated where bit 2 of j-2 is clear
    ...g(PTR),
    ...g(R),
    ...g(SIN), ...g(COS), ...g(SWAP), ...simd.bitselect,
    ...c('sign'), ...g(J), ...c('iTwo'), ...simd.i32x4Sub, ...op.i32Const(29), ...simd.i32x4Shl, ...simd.andNot,
    ...simd.xor,
    ...simd.f32x4Mul, ...c('zeroF'), ...simd.f32x4Add,
    ...simd.store(offset),
    // d[lane + 8] = fround(r * sin) + 0 with sin negated where bit 2 of j is set
    ...g(PTR),
    ...g(R),
    ...g(COS), ...g(SIN), ...g(SWAP), ...simd.bitselect,
    ...g(J), ...op.i32Const(29), ...simd.i32x4Shl, ...c('sign'), ...simd.and,
    ...simd.xor,
    ...simd.f32x4Mul, ...c('zeroF'), ...simd.f32x4Add,
    ...simd.store(offset + 32),
  ];

  const body = [
    ...init,
    ...g(PTR), ...g(BLOCKS), ...op.i32Const(64), ...op.i32Mul, ...op.i32Add, ...op.set(END),
    ...loopWhileBelow(PTR, END, 64, [...group(0), ...group(16)]),
  ];
  return { name: 'boxMuller', params: [I32, I32], locals, body };
}
