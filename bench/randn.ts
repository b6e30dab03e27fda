/**
 * randn/rand micro-benchmark (`npx tsx bench/randn.ts`): warm median per call of torch-CPU-exact draws of 32768
 * values (SD1.5 latents of one image are 16384; the Brownian tree draws this size per model call).
 * SDBOT_NO_SIMD=1 measures the JS fallback.
 */
import { TorchGenerator } from '../src/engine/sampling/torch-rng.js';

const N = Number(process.env.BENCH_NUMEL ?? 32768);
const RUNS = Number(process.env.BENCH_RUNS ?? 400);

function median(op: (g: TorchGenerator) => void): number {
  const g = new TorchGenerator(1);
  for (let i = 0; i < 50; i++) op(g); // warm-up: let V8 (and the wasm tier-up) settle
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = process.hrtime.bigint();
    op(g);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1]!;
}

const randn = median((g) => g.randn(N));
const rand = median((g) => g.rand(N));
console.log(`numel ${N}: randn ${randn.toFixed(3)} ms, rand ${rand.toFixed(3)} ms (median of ${RUNS})`);
