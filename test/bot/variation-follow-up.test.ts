/**
 * V1–V4 under a grid: with a stable unCLIP model live they submit a `variation` job on it, and that job runs the
 * engine's image-variation pipeline (noise level in the infotext, no denoising strength); without one they stay an
 * img2img pass on the base model. Vary (Subtle/Strong) always stay img2img.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { followUpRequest, type FollowUpContext } from '../../src/bot/core/actions.js';
import { ModelCatalog } from '../../src/bot/core/models.js';
import { createEngine } from '../../src/engine/create-engine.js';
import { readPngParameters } from '../../src/engine/image/index.js';
import type { PipelineOutput } from '../../src/engine/pipelines/types.js';
import { parseRequest } from '../../src/queue/job.js';
import { FIXTURE_MODELS } from '../helpers/fixture-cases.js';
import { solidPng } from './memory-queue.js';

async function context(live: string[]): Promise<FollowUpContext> {
  const catalog = new ModelCatalog({ models: async () => live }, [
    { id: 'sd15', family: 'sd15', role: 'base', isDefault: true },
    { id: 'sd21-unclip', family: 'sd2', role: 'variation' },
  ]);
  await catalog.refresh();
  const png = await solidPng(64, 48, 90);
  return {
    catalog, origin: { platform: 'discord', userId: 'bob' }, messageImages: async () => [png], randomSeed: () => '77',
    putInput: async (bytes) => ({ kind: 'bytes', base64: Buffer.from(bytes).toString('base64') }),
  };
}

const original = parseRequest({ model: 'sd15', prompt: 'a red fox', seed: '7', sampler: 'euler_a', steps: 4, guidance: 6 });

describe('V buttons and image-variation models', () => {
  const enginePromise = createEngine();
  afterAll(async () => (await enginePromise).close());

  it('V1 on a live unCLIP model submits a variation job there, which reaches the unCLIP pipeline', async () => {
    const req = await followUpRequest({ action: 'variation', index: 0, jobId: 'j' }, original, await context(['sd15', 'sd21-unclip']));
    expect(req).toMatchObject({ kind: 'variation', model: 'sd21-unclip', prompt: 'a red fox', width: 64, height: 48, seed: '77', noiseLevel: null, sampler: null, steps: null, guidance: null });
    expect(req.initImage?.kind).toBe('bytes');

    const engine = await enginePromise;
    await engine.loadModel({ id: 'sd21-unclip', dir: join(FIXTURE_MODELS, 'tiny-sd21-unclip') });
    let out: PipelineOutput | undefined;
    const result = await engine.runJob(parseRequest({ ...req, steps: 3 }), { onOutput: (o) => (out = o) });
    expect(out!.latents.dims).toEqual([1, 4, 6, 8]);
    const text = readPngParameters(result.images[0]!.png);
    expect(text).toMatch(/Noise level: 0/);
    expect(text).not.toMatch(/Denoising strength/);
  });

  it('without an unCLIP model V1 stays img2img on the base model; Vary (Subtle) always does', async () => {
    const plain = await followUpRequest({ action: 'variation', index: 0, jobId: 'j' }, original, await context(['sd15']));
    expect(plain).toMatchObject({ kind: 'img2img', model: 'sd15', strength: 0.6, sampler: 'euler_a' });
    const subtle = await followUpRequest({ action: 'vary_subtle', index: 0, jobId: 'j' }, original, await context(['sd15', 'sd21-unclip']));
    expect(subtle).toMatchObject({ kind: 'img2img', model: 'sd15', strength: 0.35 });
  });
});
