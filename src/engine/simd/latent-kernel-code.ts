/**
 * The WebAssembly SIMD code of the latent loops (see latent-kernels.ts for what they compute and why): guidance,
 * the samplers' linear combinations, the x0 and Heun updates and the Brownian bridge, as instruction lists. Every
 * kernel walks whole 4-float groups of byte-addressed operands from 0 to `end`.
 */
import { F32, F64, I32, JOIN_LOW_HALVES, V128, loopWhileBelow, op, simd, type ValType, type WasmFunction } from './wasm-encoding.js';

/** Linear combinations with more terms than this use the JS loop. */
export const MAX_TERMS = 5;

// ─── kernels ────────────────────────────────────────────────────────────────────────────────────────────────────

/** The loop every kernel shares: i = 0, 16, 32 … < end (4 floats per turn); `local i` is the byte offset. */
function loop4(end: number, i: number, body: readonly number[]): number[] {
  return loopWhileBelow(i, end, 16, body);
}

/** Two float32 at slot base + i + half, widened to float64 lanes. */
function loadF64x2(base: number, i: number, half: 0 | 8): number[] {
  return [...op.get(base), ...op.get(i), ...op.i32Add, ...simd.load64Zero(half), ...simd.f64x2PromoteLowF32x4];
}


/** Stores the float64 expression `half(h)` computed for both halves of the 4-float group at out + i. */
function storeHalves(out: number, i: number, half: (h: 0 | 8) => number[]): number[] {
  return [
    ...op.get(out), ...op.get(i), ...op.i32Add,
    ...half(0), ...simd.f32x4DemoteF64x2Zero,
    ...half(8), ...simd.f32x4DemoteF64x2Zero,
    ...JOIN_LOW_HALVES,
    ...simd.store(),
  ];
}

/** Splats float64 params into v128 locals, pairwise: [param, local]. */
function splatF64(pairs: readonly (readonly [number, number])[]): number[] {
  return pairs.flatMap(([p, l]) => [...op.get(p), ...simd.f64x2Splat, ...op.set(l)]);
}

/**
 * lc{k}(end, out, b0 … bk-1, c0 … ck-1 [, d]): out = (c0*b0 + c1*b1 + … ) [/ d] in float64, left to right.
 */
function linearCombination(k: number, divide: boolean): WasmFunction {
  const END = 0, OUT = 1, B = 2, C = 2 + k, D = 2 + 2 * k;
  const params: ValType[] = [I32, I32, ...Array<ValType>(k).fill(I32), ...Array<ValType>(k).fill(F64), ...(divide ? [F64 as ValType] : [])];
  const I = params.length, CV = I + 1, DV = CV + k;
  const locals: ValType[] = [I32, ...Array<ValType>(k).fill(V128), ...(divide ? [V128 as ValType] : [])];
  const half = (h: 0 | 8): number[] => {
    const code: number[] = [];
    for (let j = 0; j < k; j++) {
      code.push(...loadF64x2(B + j, I, h), ...op.get(CV + j), ...simd.f64x2Mul);
      if (j > 0) code.push(...simd.f64x2Add);
    }
    if (divide) code.push(...op.get(DV), ...simd.f64x2Div);
    return code;
  };
  const splats = Array.from({ length: k }, (_, j) => [C + j, CV + j] as const);
  if (divide) splats.push([D, DV]);
  return { name: `lc${k}${divide ? 'div' : ''}`, params, locals, body: [...splatF64(splats), ...loop4(END, I, storeHalves(OUT, I, half))] };
}

/** guidance(end, out, uncond, cond, g): out = u + g * (c - u) in float32, as torch's float32 ops. */
function guidance(): WasmFunction {
  const END = 0, OUT = 1, U = 2, C = 3, G = 4, I = 5, GV = 6;
  const load = (base: number) => [...op.get(base), ...op.get(I), ...op.i32Add, ...simd.load()];
  return {
    name: 'guidance',
    params: [I32, I32, I32, I32, F32],
    locals: [I32, V128],
    body: [
      ...op.get(G), ...simd.f32x4Splat, ...op.set(GV),
      ...loop4(END, I, [
        ...op.get(OUT), ...op.get(I), ...op.i32Add,
        ...load(U), ...load(C), ...load(U), ...simd.f32x4Sub, ...op.get(GV), ...simd.f32x4Mul, ...simd.f32x4Add,
        ...simd.store(),
      ]),
    ],
  };
}

/**
 * x0Update(end, out, s, m, z, x0S, x0M, lo, hi, p, q, r, e): x0 = clamp(x0S*s + x0M*m, lo, hi);
 * out = p*x0 + q*s + r*m + (withNoise ? e*z : 0), in float64 (see vp-common's applyX0Update).
 */
function x0Update(withNoise: boolean): WasmFunction {
  const END = 0, OUT = 1, S = 2, M = 3, Z = 4, X0S = 5; // X0S, X0M, LO, HI, P, Q, R, E: params 5 … 12
  const I = 13, SV = 14, MV = 15, ZERO = 16, X0SV = 17; // splats of params 5 … 12 in locals 17 … 24
  const [x0s, x0m, lo, hi, p, q, r, e] = Array.from({ length: 8 }, (_, j) => X0SV + j) as [number, number, number, number, number, number, number, number];
  const half = (h: 0 | 8): number[] => [
    ...loadF64x2(S, I, h), ...op.set(SV),
    ...loadF64x2(M, I, h), ...op.set(MV),
    ...op.get(x0s), ...op.get(SV), ...simd.f64x2Mul, ...op.get(x0m), ...op.get(MV), ...simd.f64x2Mul, ...simd.f64x2Add,
    // pmax(x, lo) = x < lo ? lo : x; pmin(x, hi) = hi < x ? hi : x — the JS clamp, NaN passing through
    ...op.get(lo), ...simd.f64x2Pmax, ...op.get(hi), ...simd.f64x2Pmin,
    ...op.get(p), ...simd.f64x2Mul,
    ...op.get(q), ...op.get(SV), ...simd.f64x2Mul, ...simd.f64x2Add,
    ...op.get(r), ...op.get(MV), ...simd.f64x2Mul, ...simd.f64x2Add,
    ...(withNoise ? [...loadF64x2(Z, I, h), ...op.get(e), ...simd.f64x2Mul] : op.get(ZERO)),
    ...simd.f64x2Add,
  ];
  return {
    name: withNoise ? 'x0UpdateNoise' : 'x0Update',
    params: [I32, I32, I32, I32, I32, F64, F64, F64, F64, F64, F64, F64, F64],
    locals: [I32, V128, V128, V128, ...Array<ValType>(8).fill(V128)],
    body: [...splatF64(Array.from({ length: 8 }, (_, j) => [X0S + j, X0SV + j] as const)), ...loop4(END, I, storeHalves(OUT, I, half))],
  };
}

/**
 * Heun's two stages (see heun.ts), with x0 = clamp(a*s + b*m, lo, hi):
 * heunFirst(end, out, deriv, s, m, a, b, lo, hi, sigma, dt): d = (s - x0) / sigma; deriv = f32(d); out = s + d * dt
 * heunSecond(end, out, first, s, m, start, a, b, lo, hi, sigma, dt): out = start + ((first + (s - x0) / sigma) / 2) * dt
 */
function heun(second: boolean): WasmFunction {
  const END = 0, OUT = 1, AUX = 2, S = 3, M = 4, START = 5; // AUX: deriv (first stage) or first (second stage)
  const P = second ? 6 : 5; // a, b, lo, hi, sigma, dt: params P … P+5
  const I = P + 6, SV = I + 1, XV = I + 2, HALF = I + 3, AV = I + 4; // splats of a … dt in locals AV … AV+5
  const [a, b, lo, hi, sigma, dt] = Array.from({ length: 6 }, (_, j) => AV + j) as [number, number, number, number, number, number];
  const x0 = (h: 0 | 8): number[] => [
    ...loadF64x2(S, I, h), ...op.set(SV),
    ...op.get(a), ...op.get(SV), ...simd.f64x2Mul, ...loadF64x2(M, I, h), ...op.get(b), ...simd.f64x2Mul, ...simd.f64x2Add,
    ...op.get(lo), ...simd.f64x2Pmax, ...op.get(hi), ...simd.f64x2Pmin, ...op.set(XV),
  ];
  // (s - x0) / sigma
  const slope = [...op.get(SV), ...op.get(XV), ...simd.f64x2Sub, ...op.get(sigma), ...simd.f64x2Div];
  let body: number[];
  if (!second) {
    // the derivative is stored as float32, but the update uses it unrounded: the float32 copy times a large dt (sigma_max
    // ~1e4 on squaredcos / zero-SNR schedules) would be off by ulp * dt, where diffusers' float32 x + (x0 - x) lands on x0
    const derivHalf = (h: 0 | 8) => [...x0(h), ...slope];
    const outHalf = (h: 0 | 8) => [...x0(h), ...slope, ...op.get(dt), ...simd.f64x2Mul, ...op.get(SV), ...simd.f64x2Add];
    body = [...storeHalves(AUX, I, derivHalf), ...storeHalves(OUT, I, outHalf)];
  } else {
    const outHalf = (h: 0 | 8) => [
      ...x0(h),
      ...loadF64x2(START, I, h),
      ...loadF64x2(AUX, I, h), ...slope, ...simd.f64x2Add, ...op.get(HALF), ...simd.f64x2Div,
      ...op.get(dt), ...simd.f64x2Mul, ...simd.f64x2Add,
    ];
    body = storeHalves(OUT, I, outHalf);
  }
  const params: ValType[] = [I32, I32, I32, I32, I32, ...(second ? [I32 as ValType] : []), ...Array<ValType>(6).fill(F64)];
  return {
    name: second ? 'heunSecond' : 'heunFirst',
    params,
    locals: [I32, V128, V128, V128, ...Array<ValType>(6).fill(V128)],
    body: [
      ...[0x44, ...f64Bytes(2)], ...simd.f64x2Splat, ...op.set(HALF),
      ...splatF64(Array.from({ length: 6 }, (_, j) => [P + j, AV + j] as const)),
      ...loop4(END, I, body),
    ],
  };
}

/**
 * bridge(end, left, right, w, z, a, b, sd): left = ((w*a)*b) + (sd*z), right = w - left, each op rounded to float32
 * (the Brownian tree's bridge between a node's increment and its children's, as torch's float32 ops).
 */
function bridge(): WasmFunction {
  const END = 0, LEFT = 1, RIGHT = 2, W = 3, Z = 4, A = 5, B = 6, SD = 7, I = 8, AV = 9, BV = 10, SDV = 11, WV = 12, LV = 13;
  const at = (base: number) => [...op.get(base), ...op.get(I), ...op.i32Add];
  return {
    name: 'bridge',
    params: [I32, I32, I32, I32, I32, F32, F32, F32],
    locals: [I32, V128, V128, V128, V128, V128],
    body: [
      ...op.get(A), ...simd.f32x4Splat, ...op.set(AV),
      ...op.get(B), ...simd.f32x4Splat, ...op.set(BV),
      ...op.get(SD), ...simd.f32x4Splat, ...op.set(SDV),
      ...loop4(END, I, [
        ...at(W), ...simd.load(), ...op.set(WV),
        ...op.get(WV), ...op.get(AV), ...simd.f32x4Mul, ...op.get(BV), ...simd.f32x4Mul,
        ...op.get(SDV), ...at(Z), ...simd.load(), ...simd.f32x4Mul, ...simd.f32x4Add, ...op.set(LV),
        ...at(LEFT), ...op.get(LV), ...simd.store(),
        ...at(RIGHT), ...op.get(WV), ...op.get(LV), ...simd.f32x4Sub, ...simd.store(),
      ]),
    ],
  };
}

/**
 * A float32 formula over latent arrays and scalars, each operation rounded to float32 as torch's float32 tensor ops
 * are: `in(k)` is element i of input k, `p(k)` scalar parameter k.
 */
export type F32Expr = { in: number } | { p: number } | { op: '+' | '-' | '*' | '/'; a: F32Expr; b: F32Expr };

const input = (k: number): F32Expr => ({ in: k });
const param = (k: number): F32Expr => ({ p: k });
const add = (a: F32Expr, b: F32Expr): F32Expr => ({ op: '+', a, b });
const sub = (a: F32Expr, b: F32Expr): F32Expr => ({ op: '-', a, b });
const mul = (a: F32Expr, b: F32Expr): F32Expr => ({ op: '*', a, b });
const div = (a: F32Expr, b: F32Expr): F32Expr => ({ op: '/', a, b });

/**
 * DPM++ SDE's denoised estimate from sample s and model output m (pred_original_sample): epsilon s - c*m, or
 * v-prediction m*c + s/d (c, d: parameters of the step).
 */
const sdeDenoised = {
  eps: (s: F32Expr, m: F32Expr, c: F32Expr): F32Expr => sub(s, mul(c, m)),
  v: (s: F32Expr, m: F32Expr, c: F32Expr, d: F32Expr): F32Expr => add(mul(m, c), div(s, d)),
};
/** Its stochastic step: keep*from - take*denoised + noise*sigmaUp. */
const sdeStep = (from: F32Expr, denoised: F32Expr, noise: F32Expr, keep: F32Expr, take: F32Expr, up: F32Expr): F32Expr =>
  add(sub(mul(keep, from), mul(take, denoised)), mul(noise, up));
/** Its last (Euler) step: sample + ((sample - denoised) / sigma) * dt. */
const sdeLastStep = (s: F32Expr, denoised: F32Expr, sigma: F32Expr, dt: F32Expr): F32Expr => add(s, mul(div(sub(s, denoised), sigma), dt));

/**
 * The float32 formulas that have kernels: name → inputs, parameters and the formula. DPM++ SDE's steps take the
 * denoised estimate inline (one pass over the latents instead of two; each op still rounds as the JS did).
 */
export const F32_FORMULAS = {
  /** inputs from, sample, output, noise; params keep, take, sigmaUp, sigma_in */
  sdeStepEps: { inputs: 4, params: 4, expr: sdeStep(input(0), sdeDenoised.eps(input(1), input(2), param(3)), input(3), param(0), param(1), param(2)) },
  /** inputs from, sample, output, noise; params keep, take, sigmaUp, a, sigma_in² + 1 */
  sdeStepV: { inputs: 4, params: 5, expr: sdeStep(input(0), sdeDenoised.v(input(1), input(2), param(3), param(4)), input(3), param(0), param(1), param(2)) },
  /** inputs sample, output; params sigma, dt, sigma_in */
  sdeLastStepEps: { inputs: 2, params: 3, expr: sdeLastStep(input(0), sdeDenoised.eps(input(0), input(1), param(2)), param(0), param(1)) },
  /** inputs sample, output; params sigma, dt, a, sigma_in² + 1 */
  sdeLastStepV: { inputs: 2, params: 4, expr: sdeLastStep(input(0), sdeDenoised.v(input(0), input(1), param(2), param(3)), param(0), param(1)) },
  /** scaling by a divisor: x / c */
  divide: { inputs: 1, params: 1, expr: div(input(0), param(0)) },
} as const satisfies Record<string, { inputs: number; params: number; expr: F32Expr }>;

export type F32FormulaName = keyof typeof F32_FORMULAS;

const F32_OPS = { '+': simd.f32x4Add, '-': simd.f32x4Sub, '*': simd.f32x4Mul, '/': simd.f32x4Div };

/** f32:<name>(end, out, in0 … , p0 … ): out = formula, 4 lanes at a time. */
function f32Formula(name: F32FormulaName): WasmFunction {
  const { inputs, params, expr } = F32_FORMULAS[name];
  const END = 0, OUT = 1, IN = 2, P = 2 + inputs, I = P + params, PV = I + 1;
  const emit = (e: F32Expr): number[] => {
    if ('in' in e) return [...op.get(IN + e.in), ...op.get(I), ...op.i32Add, ...simd.load()];
    if ('p' in e) return op.get(PV + e.p);
    return [...emit(e.a), ...emit(e.b), ...F32_OPS[e.op]];
  };
  const splats = Array.from({ length: params }, (_, k) => [...op.get(P + k), ...simd.f32x4Splat, ...op.set(PV + k)]).flat();
  return {
    name: `f32:${name}`,
    params: [I32, I32, ...Array<ValType>(inputs).fill(I32), ...Array<ValType>(params).fill(F32)],
    locals: [I32, ...Array<ValType>(params).fill(V128)],
    body: [...splats, ...loop4(END, I, [...op.get(OUT), ...op.get(I), ...op.i32Add, ...emit(expr), ...simd.store()])],
  };
}

function f64Bytes(v: number): number[] {
  return Array.from(new Uint8Array(Float64Array.of(v).buffer));
}

/** Every latent kernel, for one module. */
export function latentKernelFunctions(): WasmFunction[] {
  const functions = [guidance(), x0Update(false), x0Update(true)];
  for (let k = 1; k <= MAX_TERMS; k++) functions.push(linearCombination(k, false));
  functions.push(linearCombination(1, true), linearCombination(2, true), heun(false), heun(true), bridge());
  for (const name of Object.keys(F32_FORMULAS) as F32FormulaName[]) functions.push(f32Formula(name));
  return functions;
}
