/**
 * End to end: fake Discord → real discord.js bot → real Redis (BullMQ queue) → real engine worker running the tiny
 * ONNX models from test/fixtures → result posted back with buttons → V2 → a new result.
 */
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadRequestError } from '../../src/queue/job.js';
import { buttonClick, chatInput, fakeUser, send, userMessage } from '../fakes/discord/payloads.js';
import { startTinyEngineStack, type TinyEngineStack } from '../helpers/tiny-engine-stack.js';
import { customIds, original, startHarness, waitFinalEdit, type Harness } from './discord-harness.js';
import { solidPng } from './memory-queue.js';

describe('Discord end to end with Redis and the tiny engine', () => {
  let stack: TinyEngineStack;
  let h: Harness;
  const alice = fakeUser('alice');

  beforeAll(async () => {
    stack = await startTinyEngineStack({
      // The real engine, except that a prompt with "explode" fails inside runJob the way a refused job does.
      wrapEngine: (real) => Object.assign(Object.create(real) as typeof real, {
        runJob: (request: Parameters<typeof real.runJob>[0], hooks?: Parameters<typeof real.runJob>[1]) =>
          request.prompt.includes('explode') ? Promise.reject(new BadRequestError('the engine cannot run this model at that size')) : real.runJob(request, hooks),
      }),
    });
    h = await startHarness({ queue: stack.client, models: stack.catalog });
    await h.bot.core.catalog.refresh();
  });
  afterAll(async () => {
    await h?.close();
    await stack?.close();
  });

  it('/imagine → deferred → progress → grid with buttons → V2 → a new result', async () => {
    const i = send(h.fake, chatInput(h.fake, alice, 'imagine', { prompt: 'a photo of a cat --seed 42 --steps 4 --sampler euler_a' }));
    const final = await waitFinalEdit(h.fake, i.token, 60_000);
    const calls = h.fake.callsFor(i.token);
    expect(calls[0]?.body?.type).toBe(5);
    expect(calls.filter((c) => c.method === 'PATCH').length).toBeGreaterThan(1);
    expect(String(final.body?.content)).toContain('seed `42`');
    const grid = final.files[0]?.data;
    expect((await sharp(grid).metadata()).width).toBe(128);
    const message = original(h.fake, i.token);
    const v2 = customIds(message.components).find((id) => id.startsWith('sd1:v:1:'));
    const click = send(h.fake, buttonClick(h.fake, alice, message, v2 ?? ''));
    const second = await waitFinalEdit(h.fake, click.token, 60_000);
    expect(second.files).toHaveLength(1);
    expect(String(second.body?.content)).toContain('img2img');
  });

  it('reply-with-image with a mask makes an inpaint result', async () => {
    const pic = h.fake.addAttachment(await solidPng(64, 64, 90), 'pic.png', 'image/png', { width: 64, height: 64 });
    const mask = h.fake.addAttachment(await solidPng(64, 64, 255), 'mask.png', 'image/png', { width: 64, height: 64 });
    const target = userMessage(h.fake, alice, 'my picture', { attachments: [pic] });
    userMessage(h.fake, alice, 'a red door --steps 3', { replyTo: target, mentionBot: true, attachments: [mask] });
    const done = await h.fake.waitForCall((c) => c.method === 'PATCH' && c.path.startsWith('/channels/') && (String(c.body?.content).includes('inpaint') || String(c.body?.content).includes('⚠️')), 60_000);
    expect(String(done.body?.content)).toContain('inpaint');
    expect(done.files).toHaveLength(1);
  });

  it('an engine failure comes back as a readable message', async () => {
    const i = send(h.fake, chatInput(h.fake, alice, 'imagine', { prompt: 'explode --steps 2' }));
    const final = await waitFinalEdit(h.fake, i.token, 60_000);
    expect(String(final.body?.content)).toContain('⚠️ The job failed: the engine cannot run this model at that size');
  });
});
