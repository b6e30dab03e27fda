/** A1111 variation seeds: strength 0 is the seed's image, strength 1 the variation seed's, in between a slerp. */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { requestFromOptions } from '../../src/cli/generate.js';
import { createEngine } from '../../src/engine/create-engine.js';
import { slerpNoise } from '../../src/engine/pipelines/steps.js';
import type { PipelineOutput } from '../../src/engine/pipelines/types.js';
import { parseRequest } from '../../src/queue/job.js';
import { FIXTURE_MODELS, maxAbsDiff, rawRgb } from '../helpers/fixture-cases.js';
import { readPngParameters } from '../../src/engine/image/index.js';

describe('variation seed', async () => {
  const engine = await createEngine();
  await engine.loadModel({ id: 'tiny-sd15', dir: join(FIXTURE_MODELS, 'tiny-sd15') });
  afterAll(() => engine.close());
  const base = { model: 'tiny-sd15', prompt: 'a cat', steps: 4, sampler: 'euler', width: 64, height: 64, count: 2 } as const;
  const latents = async (extra: object): Promise<PipelineOutput> => {
    let out: PipelineOutput | undefined;
    await engine.runJob(parseRequest({ ...base, ...extra }), { onOutput: (o) => (out = o) });
    return out!;
  };

  it('strength 0 gives the seed, strength 1 the variation seed, 0.3 something close to the seed', async () => {
    const seed42 = await latents({ seed: '42' });
    const seed7 = await latents({ seed: '7' });
    expect((await latents({ seed: '42', variationSeed: '7', variationStrength: 0 })).latents.data).toEqual(seed42.latents.data);
    expect(maxAbsDiff((await latents({ seed: '42', variationSeed: '7', variationStrength: 1 })).latents.data, seed7.latents.data)).toBeLessThan(1e-4);
    const mid = (await latents({ seed: '42', variationSeed: '7', variationStrength: 0.3 })).latents.data;
    expect(maxAbsDiff(mid, seed42.latents.data)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(mid, seed42.latents.data)).toBeLessThan(maxAbsDiff(mid, seed7.latents.data));
  });

  it('blends the noise img2img and inpaint add to the picture too (as A1111 does), from the same draws', async () => {
    const init = { kind: 'file', path: join(FIXTURE_MODELS, 'init_64.png') } as const;
    const mask = { kind: 'file', path: join(FIXTURE_MODELS, 'mask_64.png') } as const;
    for (const job of [{ kind: 'img2img', initImage: init, strength: 0.6 }, { kind: 'inpaint', initImage: init, maskImage: mask, strength: 0.8 }]) {
      const plain = (await latents({ ...job, seed: '42' })).latents.data;
      // strength 0 is the plain job bit for bit: the variation adds no draw to the job's own generators
      expect((await latents({ ...job, seed: '42', variationSeed: '7', variationStrength: 0 })).latents.data).toEqual(plain);
      const varied = (await latents({ ...job, seed: '42', variationSeed: '7', variationStrength: 0.5 })).latents.data;
      expect(maxAbsDiff(varied, plain), job.kind).toBeGreaterThan(1e-3);
      expect((await latents({ ...job, seed: '42', variationSeed: '7', variationStrength: 0.5 })).latents.data).toEqual(varied);
    }
  });

  it('writes the variation seed into the PNG parameters', async () => {
    const r = await engine.runJob(parseRequest({ ...base, count: 1, seed: '42', variationSeed: '7', variationStrength: 0.25 }));
    expect(readPngParameters(r.images[0]!.png)).toMatch(/Variation seed: 7, Variation seed strength: 0.25/);
    expect((await rawRgb(r.images[0]!.png)).width).toBe(64);
  });

  it('sdbot generate --variation-seed / --variation-strength set the job fields (strength 0.5 when not given)', () => {
    const o = { model: '/m/tiny-sd15', prompt: 'a cat', out: 'o', seed: '42' };
    expect(requestFromOptions({ ...o, variationSeed: '7', variationStrength: 0.25 })).toMatchObject({ variationSeed: '7', variationStrength: 0.25 });
    expect(requestFromOptions({ ...o, variationSeed: '7' })).toMatchObject({ variationSeed: '7', variationStrength: 0.5 });
    expect(requestFromOptions(o)).toMatchObject({ variationSeed: null, variationStrength: 0 });
    expect(() => requestFromOptions({ ...o, variationStrength: 0.3 })).toThrow(/--variation-strength goes with --variation-seed/);
  });

  it("keeps A1111's linear fallback for parallel noise", () => {
    const a = Float32Array.from({ length: 2 * 3 * 2 }, (_, i) => i + 1);
    expect(Array.from(slerpNoise(a, a, [2, 3, 2], 0.3))).toEqual(Array.from(a, (v) => 0.3 * v + 0.7 * v).map(Math.fround));
  });
});
