/**
 * torch's CPU generator (`torch.Generator().manual_seed(seed)`), reproduced bit for bit so that a seed gives the
 * same latents and sampler noise as diffusers on torch CPU. Semantics: test/fixtures/reference/README.md,
 * "torch CPU RNG" (torch 1.13; the numel >= 16 normal path follows the AVX2 kernel of x86-64 builds).
 */
import { log256f, sincos256f } from './avx-mathfun.js';

const N = 624;
const M = 397;
const TWO_POW_24 = 16777216;
const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;
const TWO_PI_F32 = Math.fround(2 * Math.PI);

/** Standard 32-bit MT19937, as `at::mt19937` (same stream as std::mt19937). */
class Mt19937 {
  private readonly state = new Uint32Array(N);
  private index = N;

  seed(seed32: number): void {
    const mt = this.state;
    mt[0] = seed32;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1]!;
      mt[i] = Math.imul(1812433253, prev ^ (prev >>> 30)) + i;
    }
    this.index = N;
  }

  /** Next tempered 32-bit output (as an unsigned number). */
  next(): number {
    if (this.index >= N) this.twist();
    return temper(this.state[this.index++]!);
  }

  /** d[from .. to-1] = float32 uniforms (low 24 bits of one output each, over 2^24); the hot loop of rand/randn. */
  fillUniform24(d: Float32Array, from: number, to: number): void {
    const mt = this.state;
    let k = from;
    while (k < to) {
      if (this.index >= N) this.twist();
      const end = Math.min(to, k + N - this.index);
      let i = this.index;
      for (; k < end; k++) d[k] = (temper(mt[i++]!) & 0xffffff) / TWO_POW_24;
      this.index = i;
    }
  }

  /** Regenerates all 624 words; split in three loops so that no index needs a modulo. */
  private twist(): void {
    const mt = this.state;
    let k = 0;
    for (; k < N - M; k++) mt[k] = mixWords(mt[k]!, mt[k + 1]!, mt[k + M]!);
    for (; k < N - 1; k++) mt[k] = mixWords(mt[k]!, mt[k + 1]!, mt[k + M - N]!);
    mt[N - 1] = mixWords(mt[N - 1]!, mt[0]!, mt[M - 1]!);
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

function mixWords(current: number, next: number, far: number): number {
  const y = (current & 0x80000000) | (next & 0x7fffffff);
  return far ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
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

/** Scratch for one sincos result: [sin, cos]. */
const sinCos = new Float64Array(2);

/**
 * torch's `normal_fill_16_AVX2` on d[i .. i+15] with mean 0 and std 1: Box-Muller on eight pairs, u1 = 1 - d[i+j]
 * and u2 = d[i+8+j], writing r*cos to the first half and r*sin to the second.
 */
function boxMuller16(d: Float32Array, i: number): void {
  for (let j = i; j < i + 8; j++) {
    const u1 = 1 - d[j]!; // exact in float32: d is a multiple of 2^-24 in [0, 1)
    const u2 = d[j + 8]!;
    const radius = Math.fround(Math.sqrt(-2 * log256f(u1)));
    sincos256f(Math.fround(TWO_PI_F32 * u2), sinCos);
    // `+ 0` mirrors the kernel's final fma(n, std, mean): a -0 leaves it as +0
    d[j] = Math.fround(radius * sinCos[1]!) + 0;
    d[j + 8] = Math.fround(radius * sinCos[0]!) + 0;
  }
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

  /** `torch.rand(shape, generator=g)` in float32: one 24-bit uniform per element. */
  rand(shape: readonly number[] | number): Float32Array {
    const out = new Float32Array(numelOf(shape));
    this.mt.fillUniform24(out, 0, out.length);
    return out;
  }

  /** `torch.randn(shape, generator=g)` in float32. */
  randn(shape: readonly number[] | number): Float32Array {
    const numel = numelOf(shape);
    const out = new Float32Array(numel);
    if (numel < 16) {
      for (let k = 0; k < numel; k++) out[k] = this.normalDouble();
      return out;
    }
    // normal_fill: numel uniforms, then Box-Muller over every full block of 16
    this.mt.fillUniform24(out, 0, numel);
    for (let i = 0; i + 16 <= numel; i += 16) boxMuller16(out, i);
    if (numel % 16 !== 0) {
      // the ragged end: 16 fresh uniforms overwrite the last 16 outputs and get their own block
      this.mt.fillUniform24(out, numel - 16, numel);
      boxMuller16(out, numel - 16);
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
