/**
 * The back half of the end-to-end tests (Discord, Slack, the web chat in chromium): a throwaway Redis, a real
 * engine worker in this process on tiny fixture models, and the queue client a bot core talks to; plus the
 * catalog entries that describe those models to the core.
 */
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { ModelInfo } from '../../src/bot/core/models.js';
import { createEngine, type LocalEngine } from '../../src/engine/create-engine.js';
import type { Engine } from '../../src/engine/engine.js';
import { silentLogger } from '../../src/queue/logger.js';
import { RedisQueueClient } from '../../src/queue/redis-client.js';
import { EngineWorker } from '../../src/queue/worker.js';
import { FIXTURE_MODELS } from './fixture-cases.js';
import { startRedis, type TestRedis } from './redis-server.js';

/** Fixture models the stacks serve, as the core's catalog should see them (64×64, SD 1.5). */
const CATALOG = {
  'tiny-sd15': { id: 'tiny-sd15', family: 'sd15', role: 'base', defaultSize: { width: 64, height: 64 }, isDefault: true },
  'tiny-sd15-inpaint': { id: 'tiny-sd15-inpaint', family: 'sd15', role: 'inpaint', defaultSize: { width: 64, height: 64 } },
  'tiny-sd15-controlnet': { id: 'tiny-sd15-controlnet', family: 'sd15', role: 'controlnet', defaultSize: { width: 64, height: 64 } },
} satisfies Record<string, ModelInfo>;
export type StackModel = keyof typeof CATALOG;

export interface TinyEngineStack {
  redis: TestRedis;
  client: RedisQueueClient;
  worker: EngineWorker;
  /** For the bot core's `models` option. */
  catalog: ModelInfo[];
  /** Every input picture the engine fetched, in order (what really reached it). */
  engineInputs: Uint8Array[];
  close(): Promise<void>;
}

export interface TinyEngineStackOptions {
  models?: StackModel[];
  /** Replaces the engine the worker runs (to make some jobs fail the way a refused job does). */
  wrapEngine?: (engine: LocalEngine) => Engine;
}

export async function startTinyEngineStack(opts: TinyEngineStackOptions = {}): Promise<TinyEngineStack> {
  const ids = opts.models ?? ['tiny-sd15', 'tiny-sd15-inpaint'];
  const redis = await startRedis();
  const inputs = new Redis(redis.url, { maxRetriesPerRequest: null });
  const engineInputs: Uint8Array[] = [];
  const engine = await createEngine({
    fetchInput: async (key) => {
      const b = await inputs.getBuffer(key);
      if (b) engineInputs.push(new Uint8Array(b));
      return b ? new Uint8Array(b) : null;
    },
  });
  const worker = new EngineWorker({
    redisUrl: redis.url, prefix: redis.prefix, engine: opts.wrapEngine?.(engine) ?? engine,
    heartbeatMs: 200, progressIntervalMs: 0, previewIntervalMs: 0, logger: silentLogger,
    models: ids.map((id) => ({ id, dir: join(FIXTURE_MODELS, id), load: true })),
  });
  await worker.start();
  const client = await RedisQueueClient.connect({ redisUrl: redis.url, prefix: redis.prefix, pollMs: 200, logger: silentLogger });
  // The bot's catalog only offers models a live worker announced.
  for (let k = 0; k < 50 && (await client.models()).length < ids.length; k++) await new Promise((r) => setTimeout(r, 100));
  return {
    redis, client, worker, engineInputs,
    catalog: ids.map((id) => CATALOG[id]!),
    close: async () => {
      await client.close();
      await worker.shutdown(1000);
      inputs.disconnect();
      await redis.stop();
    },
  };
}
