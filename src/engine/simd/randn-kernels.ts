/**
 * torch-rng's randn and rand as WebAssembly SIMD kernels: the MT19937 fill (mt19937-kernel.ts) and torch's float32
 * Box-Muller (box-muller-kernel.ts). In plain JS the Box-Muller costs ~25 ns per value and the fill ~7, which made
 * randn the bottleneck of the SDE samplers' Brownian noise. Both kernels give the JS's bits (see their modules; the
 * JS in torch-rng stays the spec and the fallback where WebAssembly SIMD is missing or SDBOT_NO_SIMD=1).
 *
 * The kernels have their own memory: the generator's 624 words and the floats are copied in and out per call, so
 * the generator state stays a plain array (getState/fromState unchanged) and no wasm-backed view escapes.
 */
import { boxMuller } from './box-muller-kernel.js';
import { fill, twist } from './mt19937-kernel.js';
import { instantiateKernels } from './wasm-runtime.js';

interface Exports {
  boxMuller: (ptr: number, blocks: number) => void;
  fill: (state: number, index: number, out: number, count: number) => number;
}

/** Memory layout (bytes): the 624 MT words at STATE, the floats from DATA on. */
const STATE = 0;
const DATA = 4096;
const WORDS = 624;

// fill calls function 0
const wasm = instantiateKernels<Exports>([twist(), fill(0), boxMuller()], 2);
let heap = wasm ? new Float32Array(wasm.memory.buffer) : new Float32Array(0);
let words = wasm ? new Uint32Array(wasm.memory.buffer) : new Uint32Array(0);

/** Makes the data area hold at least n floats. */
function reserve(n: number): void {
  const memory = wasm!.memory;
  const need = DATA + 4 * n;
  if (memory.buffer.byteLength < need) memory.grow(Math.ceil((need - memory.buffer.byteLength) / 65536));
  if (heap.buffer !== memory.buffer) {
    heap = new Float32Array(memory.buffer);
    words = new Uint32Array(memory.buffer);
  }
}

/** The MT state (624 words and position) of a generator, which the kernels advance in place. */
export interface MtWords {
  readonly words: Uint32Array;
  index: number;
}

export interface RandnKernels {
  /** torch-rng's `boxMullerBlocks(d, start, blocks)`: same arguments, same bits. */
  boxMuller(d: Float32Array, start: number, blocks: number): void;
  /** torch-rng's `fillUniform24(d, from, to)` on the stream `mt`. */
  fillUniform24(mt: MtWords, d: Float32Array, from: number, to: number): void;
  /** randn's normal_fill of d (length >= 16) from the stream `mt`: uniforms and Box-Muller, the ragged end included. */
  normalFill(mt: MtWords, d: Float32Array): void;
}

function fillUniform24(mt: MtWords, d: Float32Array, from: number, to: number): void {
  const n = to - from;
  reserve(n);
  words.set(mt.words, STATE / 4);
  mt.index = wasm!.fns.fill(STATE, mt.index, DATA, n);
  mt.words.set(words.subarray(STATE / 4, STATE / 4 + WORDS));
  d.set(heap.subarray(DATA / 4, DATA / 4 + n), from);
}

function normalFill(mt: MtWords, d: Float32Array): void {
  const { fill, boxMuller } = wasm!.fns;
  const n = d.length;
  reserve(n);
  words.set(mt.words, STATE / 4);
  let index = fill(STATE, mt.index, DATA, n);
  boxMuller(DATA, Math.floor(n / 16));
  if (n % 16 !== 0) {
    // as the JS: 16 fresh uniforms overwrite the last 16 outputs and get their own block
    const tail = DATA + 4 * (n - 16);
    index = fill(STATE, index, tail, 16);
    boxMuller(tail, 1);
  }
  mt.index = index;
  mt.words.set(words.subarray(STATE / 4, STATE / 4 + WORDS));
  d.set(heap.subarray(DATA / 4, DATA / 4 + n));
}

function boxMullerBlocks(d: Float32Array, start: number, blocks: number): void {
  const n = 16 * blocks;
  reserve(n);
  heap.set(d.subarray(start, start + n), DATA / 4);
  wasm!.fns.boxMuller(DATA, blocks);
  d.set(heap.subarray(DATA / 4, DATA / 4 + n), start);
}

/** The kernels, or null where WebAssembly SIMD is missing or SDBOT_NO_SIMD=1. */
export const randnKernels: RandnKernels | null = wasm ? { boxMuller: boxMullerBlocks, fillUniform24, normalFill } : null;
