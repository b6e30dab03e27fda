/**
 * The real engine behind the queue: an `sdbot engine` process on the tiny SD 1.5 fixture model produces exactly the
 * images the engine produces in-process, for txt2img (through submitAndWait, the `generate --queue` path) and for
 * img2img with an attachment stored in Redis (read by the engine process through fetchInput).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { ROOT, killAllWorkers, spawnWorker, waitForWorker } from '../helpers/engine-procs.js';
import { follow } from '../helpers/queue-harness.js';
import { RedisQueueClient } from '../../src/queue/redis-client.js';
import { submitAndWait } from '../../src/queue/submit.js';
import { DEFAULT_ENGINE_MODULE } from '../../src/queue/child-engine.js';
import { generationRequestSchema, type GenerationRequestInput } from '../../src/queue/job.js';
import type { JobUpdate } from '../../src/queue/client.js';
import type { Engine } from '../../src/engine/engine.js';

const MODEL_DIR = join(ROOT, 'test/fixtures/models/tiny-sd15');
const INIT = join(ROOT, 'test/fixtures/models/init_64.png');

let r: TestRedis;
let c: RedisQueueClient;
let local: Engine;

beforeAll(async () => {
  r = await startRedis();
  c = await RedisQueueClient.connect({ redisUrl: r.url, prefix: r.prefix });
  const w = spawnWorker({ redisUrl: r.url, prefix: r.prefix, models: [MODEL_DIR], engineModule: DEFAULT_ENGINE_MODULE, args: ['--lock-ms', '5000'] });
  const { createEngine } = await import('../../src/engine/create-engine.js');
  local = await createEngine();
  await local.loadModel({ id: 'tiny-sd15', dir: MODEL_DIR });
  await waitForWorker(c, w, ['tiny-sd15'], 90_000);
}, 120_000);

afterAll(async () => {
  await c?.close();
  await local?.close();
  await killAllWorkers();
  await r?.stop();
});

describe.skipIf(!existsSync(MODEL_DIR))('tiny-sd15 through the queue', () => {
  it('txt2img via submitAndWait equals the in-process result', async () => {
    const input: GenerationRequestInput = {
      model: 'tiny-sd15', prompt: 'a photo of a cat', seed: '42', steps: 4, sampler: 'euler_a', width: 64, height: 64, count: 2,
    };
    const updates: JobUpdate[] = [];
    const pngs = await submitAndWait(r.url, input, (u) => updates.push(u), { prefix: r.prefix, timeoutMs: 60_000 });
    const expected = await local.runJob(generationRequestSchema.parse(input));
    expect(pngs).toHaveLength(2);
    pngs.forEach((png, i) => expect(Buffer.from(png).equals(Buffer.from(expected.images[i]!.png))).toBe(true));
    expect(updates.map((u) => u.type)).toEqual(expect.arrayContaining(['queued', 'started', 'progress', 'completed']));
    expect(updates.findLast((u) => u.type === 'progress')).toMatchObject({ step: 4, total: 4 });
  });

  it('img2img reads its init image from Redis in the engine process', async () => {
    const ref = await c.putInput(new Uint8Array(readFileSync(INIT)));
    const base = { kind: 'img2img', model: 'tiny-sd15', prompt: 'a red fox', seed: '7', steps: 4, sampler: 'euler_a', strength: 0.6 } as const;
    const { jobId } = await c.enqueue(generationRequestSchema.parse({ ...base, initImage: ref }));
    const done = await follow(c, jobId).terminal;
    if (done.type !== 'completed') throw new Error(`job ${done.type}: ${JSON.stringify(done)}`);
    const got = await c.getImage(done.images[0]!.key);
    const expected = await local.runJob(generationRequestSchema.parse({ ...base, initImage: { kind: 'file', path: INIT } }));
    expect(Buffer.from(got!).equals(Buffer.from(expected.images[0]!.png))).toBe(true);
  });
});
