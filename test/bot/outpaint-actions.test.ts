/** Zoom Out / pan buttons under a single image: layout, stateless ids, and the outpaint jobs they submit. */
import { describe, expect, it } from 'vitest';
import { decodeAction, followUpRequest, resultButtons, type ActionKind, type FollowUpContext } from '../../src/bot/core/actions.js';
import { UserError } from '../../src/bot/core/errors.js';
import { ModelCatalog } from '../../src/bot/core/models.js';
import { parseRequest, type GenerationRequest, type ImageRef } from '../../src/queue/job.js';
import { solidPng } from './memory-queue.js';

const JOB = '0f8fad5b-d9cb-469f-a165-70867728950e';

async function context(picture: Uint8Array, models = ['sd15', 'sd15-inpainting']): Promise<{ ctx: FollowUpContext; inputs: Uint8Array[] }> {
  const catalog = new ModelCatalog({ models: async () => models }, [{ id: 'sd15', family: 'sd15', role: 'base', isDefault: true }, { id: 'sd15-inpainting', family: 'sd15', role: 'inpaint' }]);
  await catalog.refresh();
  const inputs: Uint8Array[] = [];
  const ctx: FollowUpContext = {
    catalog,
    origin: { platform: 'discord', userId: 'clicker' },
    messageImages: async () => [picture],
    putInput: async (bytes): Promise<ImageRef> => {
      inputs.push(bytes);
      return { kind: 'redis', key: `in:${inputs.length}` };
    },
    randomSeed: () => '777',
  };
  return { ctx, inputs };
}

const original = (extra: Partial<GenerationRequest> = {}): GenerationRequest =>
  ({ ...parseRequest({ model: 'sd15', prompt: 'a lighthouse', seed: '5', width: 512, height: 512 }), ...extra });

const click = (action: ActionKind) => ({ action, index: 0, jobId: JOB });

describe('zoom and pan buttons', () => {
  it('sit under a single image in rows of at most 5, with ids under 100 chars that decode back', () => {
    const rows = resultButtons(JOB, 1);
    expect(rows.length).toBeLessThanOrEqual(5);
    for (const row of rows) expect(row.length).toBeLessThanOrEqual(5);
    const ids = rows.flat().map((b) => b.id);
    for (const id of ids) expect(id.length).toBeLessThanOrEqual(100);
    const actions = ids.map((id) => decodeAction(id)?.action);
    expect(actions).toEqual(expect.arrayContaining(['zoom_out2', 'zoom_out15', 'pan_left', 'pan_right', 'pan_up', 'pan_down']));
    const arrows = rows.find((r) => r.some((b) => b.emoji === '⬅️'))!;
    expect(arrows.map((b) => b.emoji)).toEqual(['⬅️', '➡️', '⬆️', '⬇️']);
    expect(rows.flat().find((b) => b.label === 'Zoom Out 1.5×')).toBeDefined();
    // Buttons posted before the pans existed keep working: z2 is still Zoom Out 2×.
    expect(decodeAction(`sd1:z2:0:${JOB}`)?.action).toBe('zoom_out2');
    // A grid keeps U/V/🔄/🗑 only.
    expect(resultButtons(JOB, 4).flat().some((b) => decodeAction(b.id)?.action.startsWith('pan_'))).toBe(false);
  });

  it('Zoom Out 2× / 1.5× submit an outpaint on the inpaint model at the picture, the size left to the engine', async () => {
    const png = await solidPng(512, 512, 40);
    for (const [action, zoom] of [['zoom_out2', 2], ['zoom_out15', 1.5]] as const) {
      const { ctx, inputs } = await context(png);
      const req = await followUpRequest(click(action), original({ negativePrompt: 'blur' }), ctx);
      expect(req).toMatchObject({
        kind: 'inpaint', model: 'sd15-inpainting', outpaint: { zoom, overlap: 8 }, maskImage: null, initImage: { kind: 'redis', key: 'in:1' },
        strength: 1, count: 1, seed: '777', width: null, height: null, prompt: 'a lighthouse', negativePrompt: 'blur',
        origin: { userId: 'clicker' },
      });
      expect(inputs).toEqual([png]);
      expect(() => parseRequest(req)).not.toThrow();
    }
  });

  it('the arrows pan each way; without an inpaint model the base model blends', async () => {
    const { ctx } = await context(await solidPng(512, 768, 90), ['sd15']);
    for (const [action, pan] of [['pan_left', 'left'], ['pan_right', 'right'], ['pan_up', 'up'], ['pan_down', 'down']] as const) {
      expect(await followUpRequest(click(action), original(), ctx)).toMatchObject({ kind: 'inpaint', model: 'sd15', outpaint: { pan, overlap: 8 } });
    }
  });

  it('a pan past the size or aspect limit is refused before it queues', async () => {
    const { ctx, inputs } = await context(await solidPng(2048, 1024, 10));
    await expect(followUpRequest(click('pan_right'), original(), ctx)).rejects.toBeInstanceOf(UserError);
    await expect(followUpRequest(click('pan_left'), original(), ctx)).rejects.toThrow(/can't be extended left/);
    expect(inputs).toHaveLength(0);
    // Up still has room (1024 → 1536 tall).
    await expect(followUpRequest(click('pan_up'), original(), ctx)).resolves.toMatchObject({ outpaint: { pan: 'up' } });
  });

  it('follow-ups on an outpainted picture do not inherit the outpaint', async () => {
    const { ctx } = await context(await solidPng(512, 512, 60));
    const zoomed = original({ kind: 'inpaint', model: 'sd15-inpainting', outpaint: { zoom: 2, overlap: 8 }, initImage: { kind: 'redis', key: 'old' } });
    expect(await followUpRequest(click('vary_subtle'), zoomed, ctx)).toMatchObject({ kind: 'img2img', outpaint: null, model: 'sd15' });
    // Re-roll repeats the same zoom with a new seed.
    expect(await followUpRequest(click('reroll'), zoomed, ctx)).toMatchObject({ kind: 'inpaint', outpaint: { zoom: 2 }, seed: '777' });
  });
});
