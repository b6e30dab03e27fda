/**
 * The WebAssembly SIMD form of randn gives bit for bit what the JS gives (the JS is pinned to torch's goldens by
 * torch-rng.test.ts): the Box-Muller kernel on every uniform randn can feed it, in either role, and whole randn
 * calls with and without the kernels on the same streams.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { boxMullerBlocks, TorchGenerator } from '../../src/engine/sampling/torch-rng.js';
import { randnKernels } from '../../src/engine/simd/randn-kernels.js';

const boxMullerSimd = randnKernels?.boxMuller;

/** Indices where two float32 arrays differ bitwise (signed zeros count). */
function differences(a: Float32Array, b: Float32Array): number[] {
  const [u, v] = [new Uint32Array(a.buffer, a.byteOffset, a.length), new Uint32Array(b.buffer, b.byteOffset, b.length)];
  const out: number[] = [];
  for (let k = 0; k < u.length; k++) if (u[k] !== v[k]) out.push(k);
  return out;
}

/** TorchGenerator as the module loads with SDBOT_NO_SIMD=1: the JS fallback throughout. */
let JsGenerator: typeof TorchGenerator;
let jsKernel: unknown;

beforeAll(async () => {
  vi.stubEnv('SDBOT_NO_SIMD', '1');
  vi.resetModules();
  JsGenerator = (await import('../../src/engine/sampling/torch-rng.js')).TorchGenerator;
  jsKernel = (await import('../../src/engine/simd/randn-kernels.js')).randnKernels;
  vi.unstubAllEnvs();
});
afterAll(() => vi.resetModules());

describe('randn SIMD kernels', () => {
  it('run as WebAssembly SIMD on Node 20, and SDBOT_NO_SIMD=1 turns them off', () => {
    expect(randnKernels).not.toBeNull();
    expect(jsKernel).toBeNull();
    expect(JsGenerator).not.toBe(TorchGenerator);
  });

  // randn feeds Box-Muller the uniforms k * 2^-24, k < 2^24: u1 = 1 - d[lane] and u2 = d[lane + 8]. Every k goes
  // through once as u1 and once as u2, the u2 partner of each u1 scrambled by an odd multiplier (a bijection mod 2^24).
  it('Box-Muller equals the JS on every input randn gives it', () => {
    const lanesPerPass = 1 << 16;
    const d = new Float32Array(2 * lanesPerPass);
    let mismatches = 0;
    let example = '';
    for (let base = 0; base < 1 << 24; base += lanesPerPass) {
      for (let k = 0; k < lanesPerPass; k++) {
        const slot = 16 * (k >> 3) + (k & 7);
        d[slot] = (base + k) * 2 ** -24;
        d[slot + 8] = (Math.imul(base + k, 0x9e3779b1) & 0xffffff) * 2 ** -24;
      }
      const input = d.slice();
      const simd = d.slice();
      boxMullerBlocks(d, 0, lanesPerPass / 8);
      boxMullerSimd!(simd, 0, lanesPerPass / 8);
      const diff = differences(d, simd);
      mismatches += diff.length;
      if (diff.length > 0 && !example) {
        const k = diff[0]!;
        example = `input ${input[k]} (pair ${input[k ^ 8]}): js ${d[k]}, simd ${simd[k]}`;
      }
    }
    expect(example).toBe('');
    expect(mismatches).toBe(0);
  });

  it('transforms only the blocks it is given', () => {
    const d = Float32Array.from({ length: 64 }, (_, k) => (k * 97 % 64) / 64);
    const input = d.slice();
    const want = d.slice();
    boxMullerBlocks(want, 16, 2);
    boxMullerSimd!(d, 16, 2);
    expect(differences(d, want)).toEqual([]);
    expect(differences(d.subarray(0, 16), input.subarray(0, 16))).toEqual([]);
    expect(differences(d.subarray(48), input.subarray(48))).toEqual([]);
    expect(differences(d.subarray(16, 48), input.subarray(16, 48)).length).toBe(32);
  });
});

describe('TorchGenerator with and without the kernels', () => {
  /** Reproducible shapes: small (< 16, the double path), ragged (numel % 16 != 0) and whole blocks. */
  function shapes(seed: number, count: number): number[][] {
    let s = seed;
    const next = (n: number): number => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return (s >>> 8) % n; // the high bits: an LCG's low bits cycle quickly
    };
    return Array.from({ length: count }, () => {
      switch (next(4)) {
        case 0: return [next(16)];
        case 1: return [1 + next(7), 1 + next(9), 1 + next(11)];
        case 2: return [16 * (1 + next(300))];
        default: return [2, 4, 1 + next(64), 1 + next(64)];
      }
    });
  }

  it.each([0, 1, 7, 123456789])('randn streams agree bitwise (seed %i)', (seed) => {
    const simd = new TorchGenerator(seed);
    const js = new JsGenerator(seed);
    const list = shapes(seed, 60);
    expect(list.some((sh) => sh.reduce((a, b) => a * b, 1) < 16)).toBe(true);
    expect(list.some((sh) => sh.reduce((a, b) => a * b, 1) % 16 !== 0 && sh.reduce((a, b) => a * b, 1) > 16)).toBe(true);
    list.forEach((shape, i) => {
      const [a, b] = [simd.randn(shape), js.randn(shape)];
      expect(differences(a, b), `call ${i} randn[${shape.join(',')}]`).toEqual([]);
      if (i % 5 === 4) expect(differences(simd.rand(37), js.rand(37)), `call ${i} rand`).toEqual([]);
    });
    expect(simd.getState()).toEqual(js.getState());
  });
});

describe('MT19937 fill kernel', () => {
  it('continues the JS stream from every kind of position, across twists', () => {
    const start = new JsGenerator(99);
    start.rand(5); // words not all fresh
    const { words } = start.getState();
    for (const index of [0, 1, 2, 3, 4, 5, 223, 226, 227, 228, 620, 621, 622, 623, 624]) {
      for (const count of [1, 3, 4, 5, 623, 624, 625, 1300, 4000]) {
        const state = { words: words.slice(), index, nextNormal: null };
        const want = JsGenerator.fromState(state).rand(count);
        const mt = { words: words.slice(), index };
        const got = new Float32Array(count + 2);
        randnKernels!.fillUniform24(mt, got, 1, count + 1);
        const what = `index ${index}, count ${count}`;
        expect(differences(got.subarray(1, count + 1), want), what).toEqual([]);
        expect([got[0], got[count + 1]], what).toEqual([0, 0]);
        const after = JsGenerator.fromState(state);
        after.rand(count);
        expect(mt, what).toEqual({ words: after.getState().words, index: after.getState().index });
      }
    }
  });

  it('rand and randn mid-stream: getState/fromState continue through the kernels as through the JS', () => {
    const g = new TorchGenerator(2024);
    g.randn(1000);
    g.randn(3); // a cached sine, and a position that is not a multiple of 4
    g.rand(777);
    const saved = g.getState();
    expect(saved.nextNormal).not.toBeNull();
    const calls = (x: TorchGenerator): Float32Array[] => [x.randn(40001), x.rand(3000), x.randn(5), x.randn(16 * 1000), x.rand(300)];
    const js = JsGenerator.fromState(saved);
    const [a, b, c] = [calls(g), calls(TorchGenerator.fromState(saved)), calls(js)];
    a.forEach((v, i) => {
      expect(differences(v, b[i]!), `call ${i}, restored`).toEqual([]);
      expect(differences(v, c[i]!), `call ${i}, JS`).toEqual([]);
    });
    expect(g.getState()).toEqual(js.getState());
  });
});
