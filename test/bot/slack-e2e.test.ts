/**
 * End to end: signed Slack requests → real Bolt app → real Redis (BullMQ queue) → real engine worker running the
 * tiny ONNX models from test/fixtures → progress edits, result uploaded through files.uploadV2 with buttons →
 * V2 → a new img2img result; and a thread reply with a picture and a mask → inpaint.
 */
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPngParameters } from '../../src/engine/image/index.js';
import { startTinyEngineStack, type TinyEngineStack } from '../helpers/tiny-engine-stack.js';
import { solidPng } from './memory-queue.js';
import { buttonValues, imageFileIds, startSlackHarness, waitBotMessage, waitFinal, type SlackHarness } from './slack-harness.js';

describe('Slack end to end with Redis and the tiny engine', () => {
  let stack: TinyEngineStack;
  let h: SlackHarness;
  const alice = 'U0ALICE';

  beforeAll(async () => {
    stack = await startTinyEngineStack();
    // A short progress throttle and enough steps that progress edits land before the result on any machine.
    h = await startSlackHarness({ queue: stack.client, models: stack.catalog, progressIntervalMs: 20 });
    await h.bot.core.catalog.refresh();
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await stack?.close();
  });

  it('/imagine → progress → uploaded grid with buttons → V2 → a new img2img result', async () => {
    const ack = await h.fake.sendCommand(alice, '/imagine', 'a photo of a cat --seed 42 --steps 24 --sampler euler_a').result;
    expect(ack.status).toBe(200);
    const msg = await waitBotMessage(h.fake, (m) => m.text.includes('a photo of a cat'));
    const final = await waitFinal(h.fake, msg.ts, 60_000);
    expect(final.versions.length).toBeGreaterThan(2);
    expect(final.versions.some((v) => /step \d+\/24/.test(v.text))).toBe(true);
    expect(final.text).toContain('seed `42`');
    const grid = h.fake.files.get(imageFileIds(final)[0] ?? '');
    expect((await sharp(grid?.data).metadata()).width).toBe(128);
    expect(readPngParameters(grid?.data ?? new Uint8Array())).toContain('Seed: 42');
    const v2 = buttonValues(final).find((v) => v.startsWith('sd1:v:1:'));
    expect(v2).toBeDefined();
    expect((await h.fake.clickButton(alice, final, v2 ?? '').result).status).toBe(200);
    const second = await waitBotMessage(h.fake, (m) => m.ts !== msg.ts && m.text.includes('a photo of a cat'));
    const secondFinal = await waitFinal(h.fake, second.ts, 60_000);
    expect(secondFinal.text).toContain('img2img');
    expect(imageFileIds(secondFinal)).toHaveLength(1);
  });

  it('a thread reply with a picture and a mask makes an inpaint result in the thread', async () => {
    const parent = h.fake.storeMessage(h.fake.channelId, alice, 'my picture', []);
    const pic = h.fake.addFile(await solidPng(64, 64, 90), 'pic.png', 'image/png', { width: 64, height: 64 });
    const mask = h.fake.addFile(await solidPng(64, 64, 255), 'mask.png', 'image/png', { width: 64, height: 64 });
    await h.fake.sendMention(alice, `<@${h.fake.botUserId}> a red door --steps 3`, { threadTs: parent.ts, files: [pic, mask] }).result;
    const msg = await waitBotMessage(h.fake, (m) => m.text.includes('a red door'));
    expect(msg.thread_ts).toBe(parent.ts);
    const final = await waitFinal(h.fake, msg.ts, 60_000);
    expect(final.text).toContain('inpaint');
    expect(final.text).toContain('tiny-sd15-inpaint');
    expect(imageFileIds(final)).toHaveLength(1);
  });
});
