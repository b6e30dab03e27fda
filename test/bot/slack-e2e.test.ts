/**
 * End to end: signed Slack requests → real Bolt app → real Redis (BullMQ queue) → real engine worker running the
 * tiny ONNX models from test/fixtures → progress edits, result uploaded through files.uploadV2 with buttons →
 * V2 → a new img2img result; and a thread reply with a picture and a mask → inpaint.
 */
import { join } from 'node:path';
import sharp from 'sharp';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/create-engine.js';
import { readPngParameters } from '../../src/engine/image/index.js';
import { RedisQueueClient } from '../../src/queue/redis-client.js';
import { EngineWorker } from '../../src/queue/worker.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { solidPng } from './memory-queue.js';
import { buttonValues, imageFileIds, startSlackHarness, waitBotMessage, waitFinal, type SlackHarness } from './slack-harness.js';

const MODELS = join(import.meta.dirname, '..', 'fixtures', 'models');

describe('Slack end to end with Redis and the tiny engine', () => {
  let redis: TestRedis;
  let client: RedisQueueClient;
  let worker: EngineWorker;
  let inputs: Redis;
  let h: SlackHarness;
  const alice = 'U0ALICE';

  beforeAll(async () => {
    redis = await startRedis();
    inputs = new Redis(redis.url, { maxRetriesPerRequest: null });
    const engine = await createEngine({
      fetchInput: async (key) => {
        const b = await inputs.getBuffer(key);
        return b ? new Uint8Array(b) : null;
      },
    });
    worker = new EngineWorker({
      redisUrl: redis.url, prefix: redis.prefix, engine, heartbeatMs: 200, progressIntervalMs: 0, previewIntervalMs: 0,
      models: ['tiny-sd15', 'tiny-sd15-inpaint'].map((id) => ({ id, dir: join(MODELS, id), load: true })),
    });
    await worker.start();
    client = await RedisQueueClient.connect({ redisUrl: redis.url, prefix: redis.prefix, pollMs: 200 });
    h = await startSlackHarness({
      queue: client,
      models: [
        { id: 'tiny-sd15', family: 'sd15', role: 'base', defaultSize: { width: 64, height: 64 }, isDefault: true },
        { id: 'tiny-sd15-inpaint', family: 'sd15', role: 'inpaint', defaultSize: { width: 64, height: 64 } },
      ],
    });
    for (let k = 0; k < 50 && (await client.models()).length < 2; k++) await new Promise((r) => setTimeout(r, 100));
    await h.bot.core.catalog.refresh();
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await client?.close();
    await worker?.shutdown(1000);
    inputs?.disconnect();
    await redis?.stop();
  });

  it('/imagine → progress → uploaded grid with buttons → V2 → a new img2img result', async () => {
    const ack = await h.fake.sendCommand(alice, '/imagine', 'a photo of a cat --seed 42 --steps 4 --sampler euler_a').result;
    expect(ack.status).toBe(200);
    const msg = await waitBotMessage(h.fake, (m) => m.text.includes('a photo of a cat'));
    const final = await waitFinal(h.fake, msg.ts, 60_000);
    expect(final.versions.length).toBeGreaterThan(2);
    expect(final.versions.some((v) => /step \d+\/4/.test(v.text))).toBe(true);
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
