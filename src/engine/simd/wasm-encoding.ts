/**
 * Just enough of the WebAssembly binary format to assemble the engine's few SIMD kernels from opcodes at startup:
 * the project has no wasm toolchain, and the kernels are small enough to write as instruction lists.
 * One module, one imported memory ("env"."memory"), functions with numeric params, locals and at most one result, all
 * exported.
 */

export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof F64 | typeof V128;

/** Unsigned LEB128. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (i32.const immediates). */
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

function vec(items: readonly (readonly number[])[]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function name(s: string): number[] {
  return vec([...s].map((c) => [c.charCodeAt(0)]));
}

function section(id: number, body: readonly number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

/** The 16 bytes of a v128 constant with every lane v (for `simd.const`). */
export const splat = {
  f32x4: (v: number): number[] => Array.from(new Uint8Array(Float32Array.of(v, v, v, v).buffer)),
  f64x2: (v: number): number[] => Array.from(new Uint8Array(Float64Array.of(v, v).buffer)),
  i32x4: (v: number): number[] => Array.from(new Uint8Array(Int32Array.of(v, v, v, v).buffer)),
};

/** The instructions the kernels use. Memory immediates are (align log2, offset). */
export const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  if: [0x04, 0x40],
  end: [0x0b],
  call: (fn: number) => [0x10, ...uleb(fn)],
  /** a, b, condition → condition ? a : b */
  select: [0x1b],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  get: (local: number) => [0x20, ...uleb(local)],
  set: (local: number) => [0x21, ...uleb(local)],
  i32Load: (offset = 0) => [0x28, 2, ...uleb(offset)],
  i32Store: (offset = 0) => [0x36, 2, ...uleb(offset)],
  f32Store: (offset = 0) => [0x38, 2, ...uleb(offset)],
  i32Const: (v: number) => [0x41, ...sleb(v)],
  f32Const: (v: number) => [0x43, ...new Uint8Array(Float32Array.of(v).buffer)],
  i32Eqz: [0x45],
  i32LtU: [0x49],
  i32GeU: [0x4f],
  i32Add: [0x6a],
  i32Sub: [0x6b],
  i32Mul: [0x6c],
  i32And: [0x71],
  i32Or: [0x72],
  i32Xor: [0x73],
  i32Shl: [0x74],
  i32ShrU: [0x76],
  f32Mul: [0x94],
  f32ConvertI32U: [0xb3],
  simd: (code: number, ...imm: number[]) => [0xfd, ...uleb(code), ...imm],
};

/** SIMD opcodes (the final SIMD proposal's numbering). */
export const simd = {
  load: (offset = 0) => op.simd(0x00, 4, ...uleb(offset)),
  store: (offset = 0) => op.simd(0x0b, 4, ...uleb(offset)),
  load64Zero: (offset = 0) => op.simd(0x5d, 3, ...uleb(offset)),
  /** A constant from its 16 little-endian bytes. */
  const: (bytes: readonly number[]) => op.simd(0x0c, ...bytes),
  shuffle: (lanes: readonly number[]) => op.simd(0x0d, ...lanes),
  f32x4Splat: op.simd(0x13),
  f64x2Splat: op.simd(0x14),
  i32x4LtS: op.simd(0x39),
  and: op.simd(0x4e),
  /** a & ~b */
  andNot: op.simd(0x4f),
  or: op.simd(0x50),
  xor: op.simd(0x51),
  /** (a & mask) | (b & ~mask), operands a, b, mask */
  bitselect: op.simd(0x52),
  f32x4DemoteF64x2Zero: op.simd(0x5e),
  f64x2PromoteLowF32x4: op.simd(0x5f),
  i32x4Shl: op.simd(0xab),
  i32x4ShrS: op.simd(0xac),
  i32x4ShrU: op.simd(0xad),
  i32x4Add: op.simd(0xae),
  i32x4Sub: op.simd(0xb1),
  f32x4Add: op.simd(0xe4),
  f32x4Sub: op.simd(0xe5),
  f32x4Mul: op.simd(0xe6),
  f32x4Div: op.simd(0xe7),
  f64x2Sqrt: op.simd(0xef),
  f64x2Add: op.simd(0xf0),
  f64x2Sub: op.simd(0xf1),
  f64x2Mul: op.simd(0xf2),
  f64x2Div: op.simd(0xf3),
  f64x2Pmin: op.simd(0xf6),
  f64x2Pmax: op.simd(0xf7),
  i32x4TruncSatF32x4S: op.simd(0xf8),
  f32x4ConvertI32x4S: op.simd(0xfa),
  f64x2ConvertLowI32x4S: op.simd(0xfe),
};

/** `while (p < end) { body; p += stride }` over the i32 locals p and end (byte offsets, compared unsigned). */
export function loopWhileBelow(p: number, end: number, stride: number, body: readonly number[]): number[] {
  return [
    ...op.block, ...op.loop,
    ...op.get(p), ...op.get(end), ...op.i32GeU, ...op.brIf(1),
    ...body,
    ...op.get(p), ...op.i32Const(stride), ...op.i32Add, ...op.set(p),
    ...op.br(0),
    ...op.end, ...op.end,
  ];
}

/** The low lanes of two demoted f64x2 vectors (two float32 each) as one f32x4. */
export const JOIN_LOW_HALVES = simd.shuffle([0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]);

export interface WasmFunction {
  name: string;
  params: readonly ValType[];
  /** Extra locals, numbered after the params. */
  locals: readonly ValType[];
  body: readonly number[];
  /** The result's type; none when the function only writes to memory. */
  result?: ValType;
}

/** A module importing env.memory and exporting `functions`. */
export function assembleModule(functions: readonly WasmFunction[]): Uint8Array {
  const types = functions.map((f) => [0x60, ...vec(f.params.map((p) => [p])), ...vec(f.result === undefined ? [] : [[f.result]])]);
  const memoryImport = [...name('env'), ...name('memory'), 0x02, 0x00, 1];
  const codes = functions.map((f) => {
    const locals = vec(f.locals.map((t) => [1, t]));
    const body = [...locals, ...f.body, ...op.end];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, vec(types)),
    ...section(2, vec([memoryImport])),
    ...section(3, vec(functions.map((_, i) => uleb(i)))),
    ...section(7, vec(functions.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(codes)),
  ]);
}
