/**
 * torch's CPU generator (`torch.Generator().manual_seed(seed)`), reproduced bit for bit so that a seed gives the
 * same latents and sampler noise as diffusers on torch CPU. Semantics: test/fixtures/reference/README.md,
 * "torch CPU RNG" (torch 1.13; the numel >= 16 normal path follows the AVX2 kernel of x86-64 builds).
 */
import { randnKernels } from '../simd/randn-kernels.js';
import { log256Lanes, sincos256Lanes } from './avx-mathfun.js';

const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;
const TWO_PI_F32 = Math.fround(2 * Math.PI);
/**
 * Below this many uniforms the JS fill is faster than the kernel, which copies the 624 words in and out: ~0.3 µs
 * fixed against ~4 ns per value in JS, even near 100 values on the 2-core reference VM. Either gives the same floats
 * and state.
 */
const SIMD_MIN_FILL = 96;

/**
 * Standard 32-bit MT19937, as `at::mt19937` (same stream as std::mt19937). The hot loops spell out 624 (state
 * size), 397 (shift) and 2^-24 as literals: V8 folds those, while it reloads a module constant at every use.
 */
class Mt19937 {
  /** The words and position; randn's kernels (simd/randn-kernels.ts) advance them in place, as the JS below does. */
  readonly words = new Uint32Array(624);
  index = 624;

  /** The whole generator state (624 words + position), to continue the same stream elsewhere. */
  save(): { words: Uint32Array; index: number } {
    return { words: this.words.slice(), index: this.index };
  }

  restore(s: { words: Uint32Array; index: number }): void {
    this.words.set(s.words);
    this.index = s.index;
  }

  seed(seed32: number): void {
    const mt = this.words;
    mt[0] = seed32;
    for (let i = 1; i < 624; i++) {
      const prev = mt[i - 1]!;
      mt[i] = Math.imul(1812433253, prev ^ (prev >>> 30)) + i;
    }
    this.index = 624;
  }

  /** Next tempered 32-bit output (as an unsigned number). */
  next(): number {
    if (this.index >= 624) this.twist();
    return temper(this.words[this.index++]!);
  }

  /** d[from .. to-1] = float32 uniforms (low 24 bits of one output each, over 2^24); the hot loop of rand/randn. */
  fillUniform24(d: Float32Array, from: number, to: number): void {
    if (randnKernels && to - from >= SIMD_MIN_FILL) {
      randnKernels.fillUniform24(this, d, from, to);
      return;
    }
    const mt = this.words;
    let k = from;
    while (k < to) {
      if (this.index >= 624) this.twist();
      const end = Math.min(to, k + 624 - this.index);
      let i = this.index;
      for (; k < end; k++) d[k] = (temper(mt[i++]!) & 0xffffff) * 5.9604644775390625e-8;
      this.index = i;
    }
  }

  /** Regenerates all 624 words; split in three loops so that no index needs a modulo. */
  private twist(): void {
    const mt = this.words;
    let k = 0;
    for (; k < 227; k++) mt[k] = mixWords(mt[k]!, mt[k + 1]!, mt[k + 397]!);
    for (; k < 623; k++) mt[k] = mixWords(mt[k]!, mt[k + 1]!, mt[k - 227]!);
    mt[623] = mixWords(mt[623]!, mt[0]!, mt[396]!);
    this.index = 0;
  }
}

function temper(word: number): number {
  let y = word;
  y ^= y >>> 11;
  y ^= (y << 7) & 0x9d2c5680;
  y ^= (y << 15) & 0xefc60000;
  y ^= y >>> 18;
  return y >>> 0;
}

/** One MT19937 recurrence step; the matrix term is selected by a mask (the low bit is a coin flip for a branch). */
function mixWords(current: number, next: number, far: number): number {
  const y = (current & 0x80000000) | (next & 0x7fffffff);
  return far ^ (y >>> 1) ^ (-(y & 1) & 0x9908b0df);
}

/**
 * Low 32 bits of a torch seed. Accepts what `Generator.manual_seed` accepts: integers in [-2^63, 2^64-1]
 * (negative ones wrap like torch's int64 -> uint64 reinterpretation); only the low 32 bits seed the MT.
 */
export function seedLow32(seed: bigint | number | string): number {
  let big: bigint;
  if (typeof seed === 'bigint') {
    big = seed;
  } else if (typeof seed === 'number') {
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(`seed ${seed} is not a safe integer; pass a bigint or a decimal string`);
    }
    big = BigInt(seed);
  } else {
    const text = seed.trim();
    if (!/^(-?\d+|0x[0-9a-f]+)$/i.test(text)) throw new RangeError(`seed "${seed}" is not an integer`);
    big = BigInt(text);
  }
  if (big < -(2n ** 63n) || big > 2n ** 64n - 1n) {
    throw new RangeError(`seed ${big} is outside [-2^63, 2^64-1]`);
  }
  return Number(BigInt.asUintN(32, big));
}

function numelOf(shape: readonly number[] | number): number {
  const dims = typeof shape === 'number' ? [shape] : shape;
  let n = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`invalid tensor shape [${dims.join(', ')}]`);
    n *= d;
  }
  return n;
}

/** Blocks transformed per pass: their lanes (three arrays of 8 doubles per block) stay in the L1 cache. */
const BLOCKS_PER_PASS = 64;
const laneA = new Float64Array(8 * BLOCKS_PER_PASS);
const laneB = new Float64Array(8 * BLOCKS_PER_PASS);
const laneC = new Float64Array(8 * BLOCKS_PER_PASS);

/**
 * torch's `normal_fill_16_AVX2` with mean 0 and std 1 on `blocks` consecutive 16-blocks from d[start]: per block,
 * Box-Muller on eight lanes with u1 = 1 - d[i+j] and u2 = d[i+8+j], writing r*cos to d[i+j] and r*sin to d[i+8+j].
 * Runs the lanes of up to BLOCKS_PER_PASS blocks through each vector function at once. This is the spec of (and the
 * fallback for) the WebAssembly SIMD kernel that randn uses where it can (`randnKernels`).
 */
export function boxMullerBlocks(d: Float32Array, start: number, blocks: number): void {
  for (let first = 0; first < blocks; first += BLOCKS_PER_PASS) {
    const count = Math.min(BLOCKS_PER_PASS, blocks - first);
    const from = start + 16 * first;
    gatherLanes(d, from, count);
    log256Lanes(laneA, laneA, 8 * count); // log(u1)
    sincos256Lanes(laneB, laneB, laneC, 8 * count); // sin, cos of theta
    scatterLanes(d, from, count);
  }
}

/** laneA = u1 = 1 - d[i+j] (exact: d is a multiple of 2^-24 in [0, 1)), laneB = theta = 2*pi * d[i+8+j] (float32). */
function gatherLanes(d: Float32Array, from: number, blocks: number): void {
  for (let b = 0, lane = 0; b < blocks; b++) {
    const i = from + 16 * b;
    for (let j = i; j < i + 8; j++, lane++) {
      laneA[lane] = 1 - d[j]!;
      laneB[lane] = Math.fround(TWO_PI_F32 * d[j + 8]!);
    }
  }
}

/** r = sqrt(-2 * log(u1)) in float32, then d[i+j] = r*cos and d[i+8+j] = r*sin. */
function scatterLanes(d: Float32Array, from: number, blocks: number): void {
  for (let b = 0, lane = 0; b < blocks; b++) {
    const i = from + 16 * b;
    for (let j = i; j < i + 8; j++, lane++) {
      const r = Math.fround(Math.sqrt(-2 * laneA[lane]!));
      // `+ 0` mirrors the kernel's final fma(n, std, mean): a -0 leaves it as +0
      d[j] = Math.fround(r * laneC[lane]!) + 0;
      d[j + 8] = Math.fround(r * laneB[lane]!) + 0;
    }
  }
}

/** Structured-cloneable generator state. */
export interface GeneratorState {
  words: Uint32Array;
  index: number;
  nextNormal: number | null;
}

export class TorchGenerator {
  private readonly mt = new Mt19937();
  /** torch's cached second Box-Muller value of the double (numel < 16) normal path. */
  private nextNormal: number | null = null;

  constructor(seed: bigint | number | string) {
    this.manualSeed(seed);
  }

  /** `manual_seed`: reseeds the MT with the low 32 bits and drops the cached normal. */
  manualSeed(seed: bigint | number | string): this {
    this.mt.seed(seedLow32(seed));
    this.nextNormal = null;
    return this;
  }

  /** A snapshot from which `fromState` continues exactly this stream (e.g. in a worker thread). */
  getState(): GeneratorState {
    return { ...this.mt.save(), nextNormal: this.nextNormal };
  }

  static fromState(state: GeneratorState): TorchGenerator {
    const g = new TorchGenerator(0);
    g.mt.restore(state);
    g.nextNormal = state.nextNormal;
    return g;
  }

  /** `torch.rand(shape, generator=g)` in float32: one 24-bit uniform per element. */
  rand(shape: readonly number[] | number): Float32Array {
    const out = new Float32Array(numelOf(shape));
    this.mt.fillUniform24(out, 0, out.length);
    return out;
  }

  /** `torch.randn(shape, generator=g)` in float32. */
  randn(shape: readonly number[] | number): Float32Array {
    return this.randnInto(new Float32Array(numelOf(shape)));
  }

  /** `randn` of out.length values written into `out` (for callers that reuse a buffer draw after draw). */
  randnInto(out: Float32Array): Float32Array {
    const numel = out.length;
    if (numel < 16) {
      for (let k = 0; k < numel; k++) out[k] = this.normalDouble();
      return out;
    }
    if (randnKernels) {
      randnKernels.normalFill(this.mt, out); // the same steps and bits as below, as WebAssembly SIMD
      return out;
    }
    // normal_fill: numel uniforms, then Box-Muller over every full block of 16
    this.mt.fillUniform24(out, 0, numel);
    boxMullerBlocks(out, 0, Math.floor(numel / 16));
    if (numel % 16 !== 0) {
      // the ragged end: 16 fresh uniforms overwrite the last 16 outputs and get their own block
      this.mt.fillUniform24(out, numel - 16, numel);
      boxMullerBlocks(out, numel - 16, 1);
    }
    return out;
  }

  /** float64 uniform in [0, 1): the low 53 bits of (first draw << 32 | second draw), over 2^53. */
  private uniform53(): number {
    const hi = this.mt.next() & 0x1fffff;
    const lo = this.mt.next();
    return (hi * TWO_POW_32 + lo) / TWO_POW_53;
  }

  /** `at::normal_distribution<double>` with mean 0 and std 1: double Box-Muller, the sine kept for the next call. */
  private normalDouble(): number {
    const cached = this.nextNormal;
    if (cached !== null) {
      this.nextNormal = null;
      return cached + 0;
    }
    const u1 = this.uniform53();
    const u2 = this.uniform53();
    const r = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = 2 * Math.PI * u1;
    this.nextNormal = r * Math.sin(theta);
    // `+ 0` is the `* std + mean` of torch's transformation::normal, which turns -0 into +0
    return r * Math.cos(theta) + 0;
  }
}

/**
 * diffusers' `randn_tensor` with a list of generators: image i draws `[1, ...perImageShape]` from generators[i], and
 * the draws are concatenated along the batch axis.
 */
export function randnBatch(generators: readonly TorchGenerator[], perImageShape: readonly number[]): Float32Array {
  const per = numelOf(perImageShape);
  const out = new Float32Array(per * generators.length);
  generators.forEach((g, i) => out.set(g.randn([1, ...perImageShape]), i * per));
  return out;
}
