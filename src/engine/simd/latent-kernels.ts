/**
 * The element loops every denoising step runs over the latents (classifier-free guidance, the samplers' linear
 * combinations, the x0 and Heun updates, DPM++ SDE's float32 formulas and its Brownian bridge), as WebAssembly SIMD
 * kernels. V8 runs these loops in plain JS at ~3 ns per element (bounds checks, float32↔float64 conversions, no
 * vectorisation); the kernels run at well under 1 ns.
 *
 * Results are bit-identical to the JS loops they replace: each kernel performs the same IEEE operations in the same
 * order and precision (float32 lanes where the JS rounds each op to float32, float64 lanes where the JS works in
 * doubles, one rounding to float32 on store). Where WebAssembly SIMD is unavailable the JS loops run instead.
 *
 * Where the kernels run and how operands reach wasm memory: latent-arena.ts (in place for buffers a denoising loop
 * took from its arena, copied for the rest). The kernels' code: latent-kernel-code.ts.
 */
import { KernelCall, simdAvailable } from './latent-arena.js';
import { F32_FORMULAS, MAX_TERMS, type F32Expr, type F32FormulaName } from './latent-kernel-code.js';

export { MAX_TERMS, type F32FormulaName } from './latent-kernel-code.js';
export { latentBuffer, simdAvailable, withLatentArena } from './latent-arena.js';

function checkLength(a: Float32Array, n: number): void {
  if (a.length !== n) throw new Error(`tensor length ${a.length} does not match the latents (${n})`);
}

/** res = uncond + g * (cond - uncond), each op rounded to float32; `out` is [uncond × n, cond × n]. */
export function guidanceInto(out: Float32Array, guidanceScale: number, res: Float32Array): Float32Array {
  const half = res.length;
  checkLength(out, 2 * half);
  const g = Math.fround(guidanceScale);
  if (!simdAvailable) {
    for (let i = 0; i < half; i++) {
      const u = out[i]!;
      res[i] = u + Math.fround(g * Math.fround(out[half + i]! - u));
    }
    return res;
  }
  const [uncond, cond] = [out.subarray(0, half), out.subarray(half)];
  const call = new KernelCall(half, [res, uncond, cond]);
  const u = call.input(uncond);
  const c = call.input(cond);
  call.run('guidance', call.end, call.output(res), u, c, g);
  return res;
}

/**
 * out = coef[0]*bufs[0] + … + coef[count-1]*bufs[count-1], in float64 left to right, rounded once to float32;
 * `divisor` divides the sum before rounding. count ≤ MAX_TERMS (divisor: count 1 or 2 only).
 */
export function linearCombinationInto(
  coef: ArrayLike<number>, bufs: readonly Float32Array[], count: number, out: Float32Array, divisor: number | null = null,
): Float32Array {
  const n = out.length;
  if (count < 1 || count > MAX_TERMS || (divisor !== null && count > 2)) throw new Error(`linearCombinationInto: ${count} terms`);
  for (let k = 0; k < count; k++) checkLength(bufs[k]!, n);
  if (!simdAvailable) return linearCombinationJs(coef, bufs, count, out, divisor);
  const call = new KernelCall(n, [out, ...bufs.slice(0, count)]);
  const at: number[] = [];
  for (let k = 0; k < count; k++) at.push(call.input(bufs[k]!));
  const args = [call.end, call.output(out), ...at];
  for (let k = 0; k < count; k++) args.push(coef[k]!);
  if (divisor !== null) args.push(divisor);
  call.run(`lc${count}${divisor === null ? '' : 'div'}`, ...args);
  return out;
}

function linearCombinationJs(
  coef: ArrayLike<number>, bufs: readonly Float32Array[], count: number, out: Float32Array, divisor: number | null,
): Float32Array {
  const n = out.length;
  const b0 = bufs[0]!;
  const c0 = coef[0]!;
  if (count === 1) {
    if (divisor !== null) for (let i = 0; i < n; i++) out[i] = (c0 * b0[i]!) / divisor;
    else for (let i = 0; i < n; i++) out[i] = c0 * b0[i]!;
    return out;
  }
  if (divisor !== null) {
    const b1 = bufs[1]!;
    const c1 = coef[1]!;
    for (let i = 0; i < n; i++) out[i] = (c0 * b0[i]! + c1 * b1[i]!) / divisor;
    return out;
  }
  for (let i = 0; i < n; i++) {
    let acc = c0 * b0[i]!;
    for (let k = 1; k < count; k++) acc += coef[k]! * bufs[k]![i]!;
    out[i] = acc;
  }
  return out;
}

/** The x0-predicting update of vp-common's applyX0Update (see there for the terms). */
export interface X0Terms {
  x0S: number;
  x0M: number;
  lo: number;
  hi: number;
  p: number;
  q: number;
  r: number;
  e: number;
}

export function x0UpdateInto(u: X0Terms, sample: Float32Array, modelOutput: Float32Array, noise: Float32Array | null, out: Float32Array): Float32Array {
  const n = sample.length;
  checkLength(modelOutput, n);
  checkLength(out, n);
  if (noise) checkLength(noise, n);
  const { x0S, x0M, lo, hi, p, q, r, e } = u;
  // pmin/pmax reproduce the JS if/else-if clamp only for lo <= hi
  if (!simdAvailable || !(lo <= hi)) {
    for (let i = 0; i < n; i++) {
      const s = sample[i]!;
      const m = modelOutput[i]!;
      let x0 = x0S * s + x0M * m;
      if (x0 < lo) x0 = lo;
      else if (x0 > hi) x0 = hi;
      out[i] = p * x0 + q * s + r * m + (noise ? e * noise[i]! : 0);
    }
    return out;
  }
  const call = new KernelCall(n, noise ? [out, sample, modelOutput, noise] : [out, sample, modelOutput]);
  const s = call.input(sample);
  const m = call.input(modelOutput);
  const z = noise ? call.input(noise) : 0;
  call.run(noise ? 'x0UpdateNoise' : 'x0Update', call.end, call.output(out), s, m, z, x0S, x0M, lo, hi, p, q, r, e);
  return out;
}

/** One Heun stage: x0 = clamp(a*s + b*m) to [-clip, clip] when clip is set. */
export interface HeunTerms {
  a: number;
  b: number;
  clip: number | null;
  sigma: number;
  dt: number;
}

/** Heun's x0 = a*s + b*m in float64, clamped to [-clip, clip] when clip is set (the kernels' pmax/pmin). */
function heunX0(a: number, b: number, clip: number | null, s: number, m: number): number {
  const x0 = a * s + b * m;
  return clip === null ? x0 : Math.min(Math.max(x0, -clip), clip);
}

/** First stage: derivative = (s - x0) / sigma (stored as float32), out = s + derivative * dt. */
export function heunFirstInto(u: HeunTerms, sample: Float32Array, modelOutput: Float32Array, derivative: Float32Array, out: Float32Array): void {
  const n = sample.length;
  for (const a of [modelOutput, derivative, out]) checkLength(a, n);
  const { a, b, clip, sigma, dt } = u;
  // pmin/pmax match Math.min/Math.max only for a positive clip range (signed zeros)
  if (!simdAvailable || (clip !== null && !(clip > 0))) {
    for (let k = 0; k < n; k++) {
      const s = sample[k]!;
      const d = (s - heunX0(a, b, clip, s, modelOutput[k]!)) / sigma;
      derivative[k] = d;
      out[k] = s + d * dt;
    }
    return;
  }
  const call = new KernelCall(n, [out, derivative, sample, modelOutput]);
  const s = call.input(sample);
  const m = call.input(modelOutput);
  const [o, d] = [call.output(out), call.output(derivative)];
  call.run('heunFirst', call.end, o, d, s, m, a, b, clip === null ? -Infinity : -clip, clip ?? Infinity, sigma, dt);
}

/** Second stage: out = start + ((first + (s - x0) / sigma) / 2) * dt. */
export function heunSecondInto(
  u: HeunTerms, sample: Float32Array, modelOutput: Float32Array, start: Float32Array, first: Float32Array, out: Float32Array,
): void {
  const n = sample.length;
  for (const a of [modelOutput, start, first, out]) checkLength(a, n);
  const { a, b, clip, sigma, dt } = u;
  if (!simdAvailable || (clip !== null && !(clip > 0))) {
    for (let k = 0; k < n; k++) {
      const s = sample[k]!;
      const derivative = (first[k]! + (s - heunX0(a, b, clip, s, modelOutput[k]!)) / sigma) / 2;
      out[k] = start[k]! + derivative * dt;
    }
    return;
  }
  const call = new KernelCall(n, [out, sample, modelOutput, start, first]);
  const s = call.input(sample);
  const m = call.input(modelOutput);
  const st = call.input(start);
  const f = call.input(first);
  call.run('heunSecond', call.end, call.output(out), f, s, m, st, a, b, clip === null ? -Infinity : -clip, clip ?? Infinity, sigma, dt);
}

/** The Brownian bridge: left = ((w*a)*b) + (sd*z) and right = w - left, each op rounded to float32. */
export function bridgeInto(w: Float32Array, z: Float32Array, a: number, b: number, sd: number, left: Float32Array, right: Float32Array): void {
  const n = w.length;
  for (const x of [z, left, right]) checkLength(x, n);
  const [fa, fb, fsd] = [Math.fround(a), Math.fround(b), Math.fround(sd)];
  if (!simdAvailable) {
    for (let k = 0; k < n; k++) {
      const l = Math.fround(Math.fround(Math.fround(w[k]! * fa) * fb) + Math.fround(fsd * z[k]!));
      left[k] = l;
      right[k] = w[k]! - l;
    }
    return;
  }
  const call = new KernelCall(n, [left, right, w, z]);
  const wAt = call.input(w);
  const zAt = call.input(z);
  call.run('bridge', call.end, call.output(left), call.output(right), wAt, zAt, fa, fb, fsd);
}

/**
 * out[i] = the named float32 formula (latent-kernel-code.ts's F32_FORMULAS) of inputs[..][i] and `params`, every
 * operation rounded to float32. Parameters are rounded to float32 first, as torch does with a Python scalar.
 */
export function f32FormulaInto(name: F32FormulaName, inputs: readonly Float32Array[], params: readonly number[], out: Float32Array): Float32Array {
  const formula = F32_FORMULAS[name];
  if (inputs.length !== formula.inputs || params.length !== formula.params) throw new Error(`${name}: ${inputs.length} inputs, ${params.length} params`);
  const n = out.length;
  for (const a of inputs) checkLength(a, n);
  const ps = params.map((v) => Math.fround(v));
  if (!simdAvailable) {
    const at = (e: F32Expr, i: number): number => {
      if ('in' in e) return inputs[e.in]![i]!;
      if ('p' in e) return ps[e.p]!;
      const [a, b] = [at(e.a, i), at(e.b, i)];
      return Math.fround(e.op === '+' ? a + b : e.op === '-' ? a - b : e.op === '*' ? a * b : a / b);
    };
    for (let i = 0; i < n; i++) out[i] = at(formula.expr, i);
    return out;
  }
  const call = new KernelCall(n, [out, ...inputs]);
  const at = inputs.map((a) => call.input(a));
  call.run(`f32:${name}`, call.end, call.output(out), ...at, ...ps);
  return out;
}
