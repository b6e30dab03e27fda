/** Canny edges for ControlNet: thin edges on a square's outline, nothing in flat regions, then a ControlNet job. */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cannyEdges } from '../../src/engine/image/canny.js';
import { createEngine } from '../../src/engine/create-engine.js';
import { parseRequest } from '../../src/queue/job.js';
import { FIXTURE_MODELS, maxAbsDiff, rawRgb } from '../helpers/fixture-cases.js';

function square(size: number, from: number, to: number): { width: number; height: number; rgb: Uint8Array } {
  const rgb = new Uint8Array(size * size * 3);
  for (let y = from; y < to; y++) for (let x = from; x < to; x++) rgb.fill(255, (y * size + x) * 3, (y * size + x) * 3 + 3);
  return { width: size, height: size, rgb };
}

describe('canny', () => {
  it('marks the outline of a square and nothing else', () => {
    const e = cannyEdges(square(32, 8, 24));
    const on = (x: number, y: number) => e.rgb[(y * 32 + x) * 3] === 255;
    expect(on(16, 3)).toBe(false); // flat background
    expect(on(16, 16)).toBe(false); // flat inside
    expect([7, 8].some((x) => on(x, 16))).toBe(true); // left edge
    expect([23, 24].some((x) => on(x, 16))).toBe(true); // right edge
    // thin: at most two pixels across the edge
    let across = 0;
    for (let x = 4; x < 12; x++) if (on(x, 16)) across++;
    expect(across).toBeLessThanOrEqual(2);
  });

  it('a ControlNet job with --control canny differs from one fed the raw picture', async () => {
    const engine = await createEngine();
    await engine.loadModel({ id: 'cn', dir: join(FIXTURE_MODELS, 'tiny-sd15-controlnet') });
    afterAll(() => engine.close());
    const base = { model: 'cn', kind: 'controlnet', prompt: 'a cat', seed: '3', steps: 10, sampler: 'euler_a', width: 64, height: 64, controlImage: { kind: 'file', path: join(FIXTURE_MODELS, 'init_64.png') } } as const;
    const latents: Float32Array[] = [];
    await engine.runJob(parseRequest(base), { onOutput: (o) => latents.push(o.latents.data) });
    const edges = await engine.runJob(parseRequest({ ...base, controlPreprocess: 'canny' }), { onOutput: (o) => latents.push(o.latents.data) });
    expect(maxAbsDiff(latents[0]!, latents[1]!)).toBeGreaterThan(1e-3);
    expect((await rawRgb(edges.images[0]!.png)).width).toBe(64);
  });
});
