/**
 * randn/rand micro-benchmark (`npm run bench:randn`): warm median per call of torch-CPU-exact draws of 32768
 * values (SD1.5 latents of two images), and the Brownian noise a 30-step DPM++ SDE run draws for them (two trees of
 * 16384 values, 60 increments along a geometric sigma grid), whose tree draws ~17 randn per increment.
 * SDBOT_NO_SIMD=1 measures the JS fallback.
 */
import { BrownianTreeNoiseSampler } from '../src/engine/sampling/brownian-tree.js';
import { TorchGenerator } from '../src/engine/sampling/torch-rng.js';

const N = Number(process.env.BENCH_NUMEL ?? 32768);
const RUNS = Number(process.env.BENCH_RUNS ?? 400);

function median(op: () => void, runs = RUNS): number {
  for (let i = 0; i < Math.min(50, runs); i++) op(); // warm-up: let V8 (and the wasm tier-up) settle
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    op();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1]!;
}

const g = new TorchGenerator(1);
const randn = median(() => g.randn(N));
const rand = median(() => g.rand(N));
console.log(`numel ${N}: randn ${randn.toFixed(3)} ms, rand ${rand.toFixed(3)} ms (median of ${RUNS})`);

const sigmas = Array.from({ length: 61 }, (_, i) => Math.fround(14.6 * (0.03 / 14.6) ** (i / 60)));
const brownian = median(() => {
  const sampler = new BrownianTreeNoiseSampler(sigmas[60]!, sigmas[0]!, 32768, [1n, 2n]);
  for (let i = 0; i < 60; i++) sampler.sample(sigmas[i]!, sigmas[i + 1]!);
}, 9);
console.log(`Brownian noise of a 30-step DPM++ SDE run (2 x 4x64x64): ${brownian.toFixed(1)} ms (median of 9)`);
