import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPngParameters } from '../../src/engine/image/index.js';
import { chatInput, fakeUser, send } from '../fakes/discord/payloads.js';
import { customIds, original, startHarness, waitCallback, waitFinalEdit, type Harness } from './discord-harness.js';
import { MemoryQueue } from './memory-queue.js';

describe('Discord /imagine against the fake Discord', () => {
  let h: Harness;
  const alice = fakeUser('alice');
  beforeAll(async () => {
    // Steps slow enough that progress edits (150 ms apart here) show up between queued and final.
    h = await startHarness({ queue: new MemoryQueue({ stepMs: 80 }) });
  });
  afterAll(async () => h.close());

  it('defers first, edits progress, then posts the grid with parameters and U/V buttons', async () => {
    const i = send(h.fake, chatInput(h.fake, alice, 'imagine', { prompt: 'a lighthouse at dusk --seed 42 --steps 6' }));
    const cb = await waitCallback(h.fake, i.token);
    expect(cb.body?.type).toBe(5);
    const queue = h.queue as MemoryQueue;
    const final = await waitFinalEdit(h.fake, i.token);
    const calls = h.fake.callsFor(i.token);
    // The deferral is the first call of this interaction, and it went out before the job was queued.
    expect(calls[0]).toBe(cb);
    const job = queue.enqueued.find((e) => e.request.prompt === 'a lighthouse at dusk');
    expect(job).toBeDefined();
    expect(cb.at).toBeLessThan(job?.at ?? 0);
    expect(job?.request.seed).toBe('42');
    expect(job?.request.steps).toBe(6);
    expect(job?.request.count).toBe(4);
    expect(job?.request.origin).toMatchObject({ platform: 'discord', userId: alice.id, guildId: h.fake.guildId });

    const edits = calls.filter((c) => c.method === 'PATCH');
    const progress = edits.filter((c) => c !== final);
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress.some((c) => String(c.body?.content).includes('step'))).toBe(true);
    // At most one progress edit per interval (150 ms here; 2 s by default). Arrival times jitter under load, so
    // count edits over the job's span rather than comparing neighbours.
    const span = (edits.at(-1)?.at ?? 0) - (edits[0]?.at ?? 0);
    expect(edits.length - 1).toBeLessThanOrEqual(Math.ceil(span / 150) + 1);

    expect(String(final.body?.content)).toContain('**a lighthouse at dusk**');
    expect(String(final.body?.content)).toContain('seed `42`');
    expect(final.files).toHaveLength(1);
    const grid = final.files[0]?.data ?? new Uint8Array();
    const meta = await sharp(grid).metadata();
    expect([meta.width, meta.height]).toEqual([128, 128]);
    expect(readPngParameters(grid)).toContain('Seed: 42');
    const ids = customIds(final.body?.components);
    expect(ids).toEqual(expect.arrayContaining([`sd1:u:0:${job?.jobId}`, `sd1:v:1:${job?.jobId}`, `sd1:r:0:${job?.jobId}`]));
    expect(ids.every((id) => id.length <= 100)).toBe(true);
    expect(original(h.fake, i.token).attachments).toHaveLength(1);
  });

  it('answers malformed options with a precise ephemeral message and queues nothing', async () => {
    const before = (h.queue as MemoryQueue).enqueued.length;
    const cases: [Record<string, string | number>, RegExp][] = [
      [{ prompt: 'a cat --steps 500' }, /--steps` must be a whole number from 1 to 150; you gave 500/],
      [{ prompt: 'a cat --seeed 4' }, /Did you mean `--seed`\?/],
      [{ prompt: 'a cat --ar 16:9', width: 512 }, /either an aspect ratio/],
      [{ prompt: 'a cat --sampler eular' }, /Did you mean `euler`\?/],
      [{ prompt: '--seed 1' }, /prompt is empty/],
      [{ prompt: 'a cat --model nope' }, /don't know the model `nope`.*tiny-sd15/],
      [{ prompt: 'a cat --size 500x500' }, /multiples of 8/],
      [{ prompt: 'a cat', seed: '99999999999999999999999' }, /from 0 to 18446744073709551615/],
    ];
    for (const [options, expected] of cases) {
      const i = send(h.fake, chatInput(h.fake, alice, 'imagine', options));
      const cb = await waitCallback(h.fake, i.token);
      expect(cb.body?.type).toBe(4);
      const data = cb.body?.data as { content: string; flags: number };
      expect(data.flags & 64).toBe(64);
      expect(data.content).toMatch(expected);
    }
    expect((h.queue as MemoryQueue).enqueued.length).toBe(before);
  });

  it('shows the help text for /imagine help', async () => {
    const i = send(h.fake, chatInput(h.fake, alice, 'imagine', { prompt: 'help' }));
    const cb = await waitCallback(h.fake, i.token);
    expect((cb.body?.data as { content: string }).content).toContain('--ar');
  });

  it('surfaces an engine failure as a readable message', async () => {
    const i = send(h.fake, chatInput(h.fake, alice, 'imagine', { prompt: 'explode please' }));
    const final = await waitFinalEdit(h.fake, i.token);
    expect(String(final.body?.content)).toContain('The job failed: the UNet ran out of memory at 2048x2048');
  });

  it('suggests models and aspect ratios as the user types', async () => {
    const { autocomplete } = await import('../fakes/discord/payloads.js');
    const i = send(h.fake, autocomplete(h.fake, alice, 'imagine', 'model', 'tiny'));
    const cb = await waitCallback(h.fake, i.token);
    expect(cb.body?.type).toBe(8);
    expect((cb.body?.data as { choices: { value: string }[] }).choices.map((c) => c.value)).toEqual(['tiny-sd15']);
    const j = send(h.fake, autocomplete(h.fake, alice, 'imagine', 'ar', '16'));
    const cb2 = await waitCallback(h.fake, j.token);
    expect((cb2.body?.data as { choices: { value: string }[] }).choices.map((c) => c.value)).toEqual(['16:9']);
  });
});
