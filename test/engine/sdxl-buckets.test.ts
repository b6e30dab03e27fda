/** SDXL's trained buckets at the model's native resolution: an off-bucket size runs as asked, and the engine names the nearest bucket. */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bucketsFor, nearestBucket } from '../../src/engine/sdxl-buckets.js';
import { createEngine } from '../../src/engine/create-engine.js';
import { parseRequest } from '../../src/queue/job.js';
import { FIXTURE_MODELS } from '../helpers/fixture-cases.js';

describe('SDXL buckets', () => {
  it('has the 1024² list: sides multiples of 64, about a megapixel', () => {
    for (const b of bucketsFor(1024)) {
      expect(b.width % 64).toBe(0);
      expect(b.height % 64).toBe(0);
      expect(b.width * b.height).toBeGreaterThan(0.9e6);
      expect(b.width * b.height).toBeLessThan(1.1e6);
    }
  });

  it('maps aspect ratios to the nearest bucket', () => {
    expect(nearestBucket(1024, 1024, 1024)).toEqual({ width: 1024, height: 1024 });
    expect(nearestBucket(1920, 1080, 1024)).toEqual({ width: 1344, height: 768 });
    expect(nearestBucket(1080, 1920, 1024)).toEqual({ width: 768, height: 1344 });
    expect(nearestBucket(1500, 1000, 1024)).toEqual({ width: 1216, height: 832 });
    expect(nearestBucket(4000, 1000, 1024)).toEqual({ width: 2048, height: 512 });
  });

  it('keeps a requested off-bucket size on the tiny SDXL (native 64²), as diffusers does, and names the nearest bucket', async () => {
    const engine = await createEngine();
    await engine.loadModel({ id: 'tiny-sdxl', dir: join(FIXTURE_MODELS, 'tiny-sdxl') });
    afterAll(() => engine.close());
    const r = await engine.runJob(parseRequest({ model: 'tiny-sdxl', prompt: 'x', seed: '1', steps: 2, width: 120, height: 64 }));
    expect([r.images[0]!.width, r.images[0]!.height]).toEqual([120, 64]);
    expect(r.notes.join(' ')).toMatch(/120×64 is not one; the nearest is the 88×48 bucket/);
  });
});
