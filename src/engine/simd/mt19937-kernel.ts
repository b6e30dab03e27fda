/**
 * MT19937 (torch's `at::mt19937`, as torch-rng's `Mt19937`) as WebAssembly functions for randn-kernels.ts: the
 * twist and the uniform fill (temper, keep the low 24 bits, scale by 2^-24) four words at a time. Integer
 * operations only, so the words and floats are the JS ones by construction; the state stays a plain array of 624
 * words plus a position, which the caller copies in and out.
 */
import { I32, V128, loopWhileBelow, op, simd, splat, type WasmFunction } from './wasm-encoding.js';

const N = 624;
const M = 397;
const MATRIX = 0x9908b0df | 0;
const UPPER = 0x80000000 | 0;

/**
 * Pushes the MT recurrence far ^ (y >>> 1) ^ (odd(y) ? MATRIX : 0) on four words; `cur`, `next` and `far` are the
 * code that loads each vector, `upper` and `matrix` locals holding the splatted constants.
 */
function mixVector(cur: number[], next: number[], far: number[], upper: number, matrix: number): number[] {
  // y = (cur & UPPER) | (next & ~UPPER), as bitselect
  const y = [...cur, ...next, ...op.get(upper), ...simd.bitselect];
  return [
    ...far,
    ...y, ...op.i32Const(1), ...simd.i32x4ShrU, ...simd.xor,
    ...y, ...op.i32Const(31), ...simd.i32x4Shl, ...op.i32Const(31), ...simd.i32x4ShrS, ...op.get(matrix), ...simd.and,
    ...simd.xor,
  ];
}

/** Pushes the scalar recurrence for word k from the words at byte offsets (from `state`) k, k + 1 and far. */
function mixWord(state: number, k: number, far: number): number[] {
  const y = [
    ...op.get(state), ...op.i32Load(4 * k), ...op.i32Const(UPPER), ...op.i32And,
    ...op.get(state), ...op.i32Load(4 * ((k + 1) % N)), ...op.i32Const(~UPPER), ...op.i32And, ...op.i32Or,
  ];
  return [
    ...op.get(state),
    ...op.get(state), ...op.i32Load(4 * far),
    ...y, ...op.i32Const(1), ...op.i32ShrU, ...op.i32Xor,
    ...op.i32Const(0), ...y, ...op.i32Const(1), ...op.i32And, ...op.i32Sub, ...op.i32Const(MATRIX), ...op.i32And,
    ...op.i32Xor,
    ...op.i32Store(4 * k),
  ];
}

/**
 * twist(state): regenerates the 624 words at byte offset state, as the JS's three loops. Four words at a time
 * read only words the sequential loop would read in the same condition: words k+1 … k+4 not yet rewritten, far
 * words k+397 … (first loop) not yet rewritten, k-227 … k-224 (second loop) already rewritten.
 */
export function twist(): WasmFunction {
  const STATE = 0, P = 1, END = 2, UPPER_V = 3, MATRIX_V = 4;
  const at = (offset: number): number[] => [...op.get(P), ...simd.load(offset)];
  const store = (code: number[]): number[] => [...op.get(P), ...code, ...simd.store()];
  return {
    name: 'twist',
    params: [I32],
    locals: [I32, I32, V128, V128],
    body: [
      ...simd.const(splat.i32x4(UPPER)), ...op.set(UPPER_V),
      ...simd.const(splat.i32x4(MATRIX)), ...op.set(MATRIX_V),
      // k < 224: far word k + 397
      ...op.get(STATE), ...op.set(P),
      ...op.get(STATE), ...op.i32Const(4 * 224), ...op.i32Add, ...op.set(END),
      ...loopWhileBelow(P, END, 16, store(mixVector(at(0), at(4), at(4 * M), UPPER_V, MATRIX_V))),
      ...[224, 225, 226].flatMap((k) => mixWord(STATE, k, k + M)),
      // 227 <= k < 623: far word k - 227 (227 + 396 = 623: whole groups)
      ...op.get(STATE), ...op.i32Const(4 * (N - M)), ...op.i32Add, ...op.set(P),
      ...op.get(STATE), ...op.i32Const(4 * 623), ...op.i32Add, ...op.set(END),
      ...loopWhileBelow(P, END, 16, store(mixVector(at(0), at(4), [
        ...op.get(P), ...op.i32Const(4 * (N - M)), ...op.i32Sub, ...simd.load(),
      ], UPPER_V, MATRIX_V))),
      ...mixWord(STATE, N - 1, M - 1),
    ],
  };
}

const TEMPER_B = 0x9d2c5680 | 0;
const TEMPER_C = 0xefc60000 | 0;

/** MT tempering of local y in place: the i32x4 form when masks (locals holding TEMPER_B, TEMPER_C) are given. */
function temper(y: number, masks?: readonly [number, number]): number[] {
  const [shl, shrU, and, xor] = masks
    ? [simd.i32x4Shl, simd.i32x4ShrU, simd.and, simd.xor]
    : [op.i32Shl, op.i32ShrU, op.i32And, op.i32Xor];
  const mask = (i: 0 | 1): number[] => (masks ? op.get(masks[i]) : op.i32Const(i === 0 ? TEMPER_B : TEMPER_C));
  const g = op.get(y);
  return [
    ...g, ...g, ...op.i32Const(11), ...shrU, ...xor, ...op.set(y),
    ...g, ...g, ...op.i32Const(7), ...shl, ...mask(0), ...and, ...xor, ...op.set(y),
    ...g, ...g, ...op.i32Const(15), ...shl, ...mask(1), ...and, ...xor, ...op.set(y),
    ...g, ...g, ...op.i32Const(18), ...shrU, ...xor, ...op.set(y),
  ];
}

/**
 * fill(state, index, out, count) -> index: float32 at byte offset out, count of them, each the low 24 bits of the
 * next tempered word over 2^24 (exact: below 2^24 the conversion does not round), twisting (the function `twistFn`
 * of the module) whenever the 624 words are used up, as the JS `fillUniform24`. Returns the new position.
 */
export function fill(twistFn: number): WasmFunction {
  const STATE = 0, INDEX = 1, OUT = 2, COUNT = 3;
  const RUN = 4, P = 5, Y = 6, V = 7, MASK_B = 8, MASK_C = 9, LOW24 = 10, SCALE = 11;
  const g = op.get;
  const body = [
    ...simd.const(splat.i32x4(TEMPER_B)), ...op.set(MASK_B),
    ...simd.const(splat.i32x4(TEMPER_C)), ...op.set(MASK_C),
    ...simd.const(splat.i32x4(0xffffff)), ...op.set(LOW24),
    ...simd.const(splat.f32x4(2 ** -24)), ...op.set(SCALE),
    ...op.block, ...op.loop,
    ...g(COUNT), ...op.i32Eqz, ...op.brIf(1),
    ...g(INDEX), ...op.i32Const(N), ...op.i32GeU,
    ...op.if, ...g(STATE), ...op.call(twistFn), ...op.i32Const(0), ...op.set(INDEX), ...op.end,
    // this run: the words left before the next twist, at most count
    ...op.i32Const(N), ...g(INDEX), ...op.i32Sub, ...op.set(RUN),
    ...g(COUNT), ...g(RUN), ...g(COUNT), ...g(RUN), ...op.i32LtU, ...op.select, ...op.set(RUN),
    ...g(COUNT), ...g(RUN), ...op.i32Sub, ...op.set(COUNT),
    ...g(STATE), ...g(INDEX), ...op.i32Const(4), ...op.i32Mul, ...op.i32Add, ...op.set(P),
    ...g(INDEX), ...g(RUN), ...op.i32Add, ...op.set(INDEX),
    // four words at a time
    ...op.block, ...op.loop,
    ...g(RUN), ...op.i32Const(4), ...op.i32LtU, ...op.brIf(1),
    ...g(P), ...simd.load(), ...op.set(V),
    ...temper(V, [MASK_B, MASK_C]),
    ...g(OUT), ...g(V), ...g(LOW24), ...simd.and, ...simd.f32x4ConvertI32x4S, ...g(SCALE), ...simd.f32x4Mul, ...simd.store(),
    ...g(P), ...op.i32Const(16), ...op.i32Add, ...op.set(P),
    ...g(OUT), ...op.i32Const(16), ...op.i32Add, ...op.set(OUT),
    ...g(RUN), ...op.i32Const(4), ...op.i32Sub, ...op.set(RUN),
    ...op.br(0),
    ...op.end, ...op.end,
    // the rest of the run one word at a time
    ...op.block, ...op.loop,
    ...g(RUN), ...op.i32Eqz, ...op.brIf(1),
    ...g(P), ...op.i32Load(), ...op.set(Y),
    ...temper(Y),
    ...g(OUT), ...g(Y), ...op.i32Const(0xffffff), ...op.i32And, ...op.f32ConvertI32U, ...op.f32Const(2 ** -24), ...op.f32Mul,
    ...op.f32Store(),
    ...g(P), ...op.i32Const(4), ...op.i32Add, ...op.set(P),
    ...g(OUT), ...op.i32Const(4), ...op.i32Add, ...op.set(OUT),
    ...g(RUN), ...op.i32Const(1), ...op.i32Sub, ...op.set(RUN),
    ...op.br(0),
    ...op.end, ...op.end,
    ...op.br(0),
    ...op.end, ...op.end,
    ...g(INDEX),
  ];
  return { name: 'fill', params: [I32, I32, I32, I32], locals: [I32, I32, I32, V128, V128, V128, V128, V128], body, result: I32 };
}
