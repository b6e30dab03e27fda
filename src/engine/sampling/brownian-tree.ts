/**
 * The Brownian motion behind DPM++ SDE: torchsde 0.2.6's `BrownianTree` (a `BrownianInterval` with
 * `halfway_tree=True`, `tol=1e-6`, `pool_size=24`, no Lévy area) and diffusers 0.30.3's `BrownianTreeNoiseSampler`
 * / `BatchedBrownianTree` wrapper around it, reproduced value for value.
 *
 * The tree covers [t0, t1] (here sigma_min..sigma_max). Every node splits at its midpoint rounded to 6 decimals, so
 * the tree is the same whatever the query order. A node's increment W comes from its parent's by the Brownian
 * bridge: left = W * l/h + sqrt(l*r/h) * Z, right = W - left (l, r: the two halves' lengths, h = l + r), where Z is
 * `torch.randn(shape)` from a generator seeded with the parent's first `SeedSequence(entropy, spawn_key=(key,
 * depth), pool_size=24).generate_state(4)` word; the root's W is randn(seed = first of generate_state(3) without a
 * spawn key) * sqrt(t1 - t0). A query [ta, tb] rounds both ends to 6 decimals, splits nodes until it is a union of
 * nodes, and sums their increments left to right. All tensor arithmetic is float32 (Python float factors are
 * rounded to float32 first, as torch does for a scalar operand); the interval arithmetic is Python float (double).
 */
import { SeedSequence } from './seed-sequence.js';
import { TorchGenerator } from './torch-rng.js';
import { bridgeInto, linearCombinationInto } from '../simd/latent-kernels.js';

const f32 = Math.fround;
const ONES = [1, 1];

/** torchsde BrownianTree's defaults, which diffusers does not override. */
const POOL_SIZE = 24;
/**
 * Increments kept in memory besides the root's: recomputing an evicted one gives the same values, but a DPM++ SDE
 * run of 25 steps bridges about 16 nodes per model call with room for ~200 and twice as many with 64. The count
 * follows the tensor size so that a tree holds about 32 MiB at most.
 */
const CACHE_BYTES = 32 * 2 ** 20;
const CACHE_MIN = 64;
const CACHE_MAX = 256;

/**
 * Python's `round(x, 6)` for a float: the exact binary value rounded to 6 decimals, halves to even, read back as the
 * nearest double. `toFixed` rounds the exact value too but takes the larger candidate on a tie; a tie needs x to be
 * an odd multiple of 1/128 (x * 10^6 = k + 1/2 exactly), which is tested directly.
 */
export function pyRound6(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  if (x < 0) return -pyRound6(-x);
  const x128 = x * 128;
  if (Number.isInteger(x128) && x128 % 2 === 1) {
    const down = Math.floor(x * 1e6); // exact: x * 10^6 = j * 7812.5
    return Number(`${down % 2 === 0 ? down : down + 1}e-6`);
  }
  return Number(x.toFixed(6));
}

interface TreeNode {
  readonly start: number;
  readonly end: number;
  readonly parent: TreeNode | null;
  readonly isLeft: boolean;
  /** set when the node splits */
  mid: number;
  spawnKey: number;
  depth: number;
  /** torch seed of the bridge noise both children are drawn with */
  wSeed: number;
  left: TreeNode | null;
  right: TreeNode | null;
}

function newNode(start: number, end: number, parent: TreeNode | null, isLeft: boolean): TreeNode {
  return { start: pyRound6(start), end: pyRound6(end), parent, isLeft, mid: NaN, spawnKey: 0, depth: 0, wSeed: 0, left: null, right: null };
}

/** torchsde.BrownianTree(t0, zeros(shape), t1, entropy) queried by increments: `tree(ta, tb)`. */
export class BrownianTree {
  private readonly root: TreeNode;
  private readonly rootW: Float32Array;
  /** node → its increment, in least-recently-used order */
  private readonly cache = new Map<TreeNode, Float32Array>();
  private readonly cacheSize: number;
  /**
   * Increments evicted from the cache, reused for new ones, and the bridge noise's buffer: a run bridges ~1000
   * nodes, and three fresh latent-sized arrays per bridge kept the garbage collector busy.
   */
  private readonly spare: Float32Array[] = [];
  private readonly z: Float32Array;

  constructor(
    t0: number,
    t1: number,
    private readonly numel: number,
    private readonly entropy: bigint,
  ) {
    if (!(t0 <= t1)) throw new Error(`Brownian tree: initial time ${t0} should be less than terminal time ${t1}`);
    this.cacheSize = Math.min(CACHE_MAX, Math.max(CACHE_MIN, Math.floor(CACHE_BYTES / (4 * numel))));
    this.z = new Float32Array(numel);
    this.root = newNode(t0, t1, null, false);
    const [wSeed] = new SeedSequence(entropy, { poolSize: POOL_SIZE }).generateState(3);
    // the unrounded ends set the root's scale; generate_state's second word seeds a space-time Lévy area no one reads
    const scale = f32(Math.sqrt(t1 - t0));
    this.rootW = new TorchGenerator(wSeed!).randn(numel).map((z) => f32(z * scale));
  }

  /** W(tb) - W(ta); the ends are clamped into [t0, t1] first, as torchsde does (with a warning). */
  increment(ta: number, tb: number): Float32Array {
    const { start, end } = this.root;
    if (ta < start) ta = start;
    if (tb < start) tb = start;
    if (ta > end) ta = end;
    if (tb > end) tb = end;
    if (ta > tb) throw new Error(`Brownian tree: query times ta=${ta} and tb=${tb} must respect ta <= tb`);
    if (ta === tb) return new Float32Array(this.numel);
    const [a, b] = [pyRound6(ta), pyRound6(tb)];
    // torchsde recurses without end here (RecursionError): the tree cannot resolve times closer than 1e-6
    if (a === b) throw new Error(`Brownian tree: query times ${ta} and ${tb} are closer than its 1e-6 resolution`);
    const nodes: TreeNode[] = [];
    this.cover(this.root, a, b, nodes);
    const w = Float32Array.from(this.incrementOf(nodes[0]!));
    // a float32 sum of two float32 values: the float64 combination 1*w + 1*wi rounded once
    for (let i = 1; i < nodes.length; i++) linearCombinationInto(ONES, [w, this.incrementOf(nodes[i]!)], 2, w);
    return w;
  }

  /** The nodes whose union is [ta, tb], left to right (node.start <= ta < tb <= node.end). */
  private cover(node: TreeNode, ta: number, tb: number, out: TreeNode[]): void {
    for (;;) {
      if (ta === node.start && tb === node.end) {
        out.push(node);
        return;
      }
      const { left, right } = this.children(node);
      if (tb <= node.mid) node = left;
      else if (ta >= node.mid) node = right;
      else {
        this.cover(left, ta, node.mid, out);
        this.cover(right, node.mid, tb, out);
        return;
      }
    }
  }

  private children(node: TreeNode): { left: TreeNode; right: TreeNode } {
    if (node.left === null || node.right === null) {
      const halfway = 0.5 * (node.end + node.start);
      node.mid = pyRound6(halfway);
      const parent = node.parent;
      node.spawnKey = parent === null ? 0 : 2 * parent.spawnKey + (node.isLeft ? 0 : 1);
      node.depth = parent === null ? 0 : parent.depth + 1;
      const seeds = new SeedSequence(this.entropy, { spawnKey: [node.spawnKey, node.depth], poolSize: POOL_SIZE });
      node.wSeed = seeds.generateState(4)[0]!;
      node.left = newNode(node.start, halfway, node, true);
      node.right = newNode(halfway, node.end, node, false);
    }
    return { left: node.left, right: node.right! };
  }

  private incrementOf(node: TreeNode): Float32Array {
    if (node === this.root) return this.rootW;
    const hit = this.cache.get(node);
    if (hit) {
      this.cache.delete(node);
      this.cache.set(node, hit);
      return hit;
    }
    // walk up to the nearest node whose increment is known, then bridge back down
    const path: TreeNode[] = [];
    let known: Float32Array | undefined;
    for (let n: TreeNode = node; ; n = n.parent!) {
      if (n === this.root) {
        known = this.rootW;
        break;
      }
      known = this.cache.get(n);
      if (known) break;
      path.push(n);
    }
    let w = known;
    for (let i = path.length - 1; i >= 0; i--) {
      const child = path[i]!;
      const [left, right] = this.bridge(child.parent!, w);
      this.remember(child.parent!.left!, left);
      this.remember(child.parent!.right!, right);
      w = child.isLeft ? left : right;
    }
    return w;
  }

  /** The increments of both children of `parent` from its own increment `w`. */
  private bridge(parent: TreeNode, w: Float32Array): [Float32Array, Float32Array] {
    const h = 1 / (parent.end - parent.start);
    const leftDiff = parent.mid - parent.start;
    const rightDiff = parent.end - parent.mid;
    const a = f32(leftDiff);
    const b = f32(h);
    const sd = f32(Math.sqrt(leftDiff * rightDiff * h));
    const z = new TorchGenerator(parent.wSeed).randnInto(this.z);
    // w is not among the spares: it is the root's, a cached one, or one just bridged (the most recently cached)
    const left = this.spare.pop() ?? new Float32Array(this.numel);
    const right = this.spare.pop() ?? new Float32Array(this.numel);
    bridgeInto(w, z, a, b, sd, left, right);
    return [left, right];
  }

  private remember(node: TreeNode, w: Float32Array): void {
    this.cache.delete(node);
    this.cache.set(node, w);
    if (this.cache.size > this.cacheSize) {
      const [oldest, increment] = this.cache.entries().next().value!;
      this.cache.delete(oldest);
      // callers use an increment at once (summed or bridged from) and never keep it, so it is free now
      this.spare.push(increment);
    }
  }
}

/**
 * diffusers' BrownianTreeNoiseSampler: `noise(sigma, sigmaNext) = W(sigmaNext) - W(sigma) / sqrt|sigmaNext - sigma|`,
 * standard normal per element. One seed: a single tree over the whole batch tensor. A list of seeds (one per
 * image, diffusers' BatchedBrownianTree): image i has its own tree, so its noise depends on its seed alone.
 */
export class BrownianTreeNoiseSampler {
  private readonly trees: BrownianTree[];
  private readonly sign: number;

  /** sigmaMin / sigmaMax and the sample() arguments are float32 values (torch 0-d float32 tensors in diffusers). */
  constructor(sigmaMin: number, sigmaMax: number, numel: number, seed: bigint | readonly bigint[]) {
    const [t0, t1, sign] = sorted(sigmaMin, sigmaMax);
    this.sign = sign;
    const seeds = typeof seed === 'bigint' ? [seed] : seed;
    if (seeds.length === 0 || numel % seeds.length !== 0) {
      throw new Error(`Brownian noise: ${seeds.length} seeds for a batch tensor of ${numel} values`);
    }
    this.trees = seeds.map((s) => new BrownianTree(t0, t1, numel / seeds.length, s));
  }

  sample(sigma: number, sigmaNext: number): Float32Array {
    const [ta, tb, sign] = sorted(sigma, sigmaNext);
    const s = this.sign * sign;
    const scale = f32(Math.sqrt(Math.abs(f32(sigmaNext - sigma))));
    const per = this.trees.map((t) => t.increment(ta, tb));
    const out = new Float32Array(per.reduce((n, w) => n + w.length, 0));
    // s * w is exact (s = ±1), so one float64 division rounded once is torch's float32 division
    let o = 0;
    for (const w of per) {
      linearCombinationInto([s], [w], 1, out.subarray(o, o + w.length), scale);
      o += w.length;
    }
    return out;
  }
}

/** BatchedBrownianTree.sort: the pair in ascending order and the sign of the swap. */
function sorted(a: number, b: number): [number, number, number] {
  return a < b ? [a, b, 1] : [b, a, -1];
}
