/**
 * numpy's `np.random.SeedSequence(entropy, spawn_key=..., pool_size=...).generate_state(n)` (uint32 words), the
 * seed expansion torchsde's Brownian trees use to give every tree node its own torch generator seed. The algorithm
 * is Melissa O'Neill's seed_seq hash as numpy documents it: the entropy words are hashed into a pool, every pool
 * word is mixed with every other, words beyond the pool are folded in, and the state is drawn by cycling the pool
 * through a second hash.
 */

const INIT_A = 0x43b0d7e5;
const MULT_A = 0x931e8875;
const INIT_B = 0x8b51f9dd;
const MULT_B = 0x58f38ded;
const MIX_MULT_L = 0xca01f9dd;
const MIX_MULT_R = 0x4973f715;
const XSHIFT = 16;
const DEFAULT_POOL_SIZE = 4;

/** A non-negative integer as numpy coerces it: little-endian uint32 words, at least one. */
function uint32Words(value: bigint | number): number[] {
  let n = BigInt(value);
  if (n < 0n) throw new Error(`SeedSequence expects non-negative integers, got ${n}`);
  if (n === 0n) return [0];
  const out: number[] = [];
  while (n > 0n) {
    out.push(Number(n & 0xffffffffn));
    n >>= 32n;
  }
  return out;
}

export class SeedSequence {
  private readonly pool: Uint32Array;

  constructor(entropy: bigint | number, opts: { spawnKey?: readonly (bigint | number)[]; poolSize?: number } = {}) {
    const poolSize = opts.poolSize ?? DEFAULT_POOL_SIZE;
    if (poolSize < DEFAULT_POOL_SIZE) throw new Error(`pool_size must be at least ${DEFAULT_POOL_SIZE}`);
    const run = uint32Words(entropy);
    const spawn = (opts.spawnKey ?? []).flatMap((k) => uint32Words(k));
    // a spawn key pads the run entropy to the pool size, so keys never collide with longer entropy
    while (spawn.length > 0 && run.length < poolSize) run.push(0);
    this.pool = mixEntropy(poolSize, [...run, ...spawn]);
  }

  /** generate_state(n) with dtype uint32. */
  generateState(nWords: number): number[] {
    let hashConst = INIT_B;
    const out: number[] = [];
    for (let i = 0; i < nWords; i++) {
      let v = this.pool[i % this.pool.length]! ^ hashConst;
      hashConst = Math.imul(hashConst, MULT_B) >>> 0;
      v = Math.imul(v, hashConst) >>> 0;
      v = (v ^ (v >>> XSHIFT)) >>> 0;
      out.push(v);
    }
    return out;
  }
}

function mixEntropy(poolSize: number, entropy: readonly number[]): Uint32Array {
  const pool = new Uint32Array(poolSize);
  let hashConst = INIT_A;
  const hashmix = (value: number): number => {
    let v = (value ^ hashConst) >>> 0;
    hashConst = Math.imul(hashConst, MULT_A) >>> 0;
    v = Math.imul(v, hashConst) >>> 0;
    return (v ^ (v >>> XSHIFT)) >>> 0;
  };
  const mix = (x: number, y: number): number => {
    const r = (Math.imul(MIX_MULT_L, x) - Math.imul(MIX_MULT_R, y)) >>> 0;
    return (r ^ (r >>> XSHIFT)) >>> 0;
  };
  for (let i = 0; i < poolSize; i++) pool[i] = hashmix(i < entropy.length ? entropy[i]! : 0);
  for (let src = 0; src < poolSize; src++) {
    for (let dst = 0; dst < poolSize; dst++) {
      if (src !== dst) pool[dst] = mix(pool[dst]!, hashmix(pool[src]!));
    }
  }
  for (let src = poolSize; src < entropy.length; src++) {
    for (let dst = 0; dst < poolSize; dst++) pool[dst] = mix(pool[dst]!, hashmix(entropy[src]!));
  }
  return pool;
}
