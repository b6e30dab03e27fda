/** The bot core both platform harnesses wrap: a queue (in-memory unless given) and the tiny model catalog. */
import type { AdminQueueClient } from '../../src/queue/client.js';
import { createBotCore } from '../../src/bot/core/create-core.js';
import type { ModelInfo } from '../../src/bot/core/models.js';
import { MemoryQueue } from './memory-queue.js';

export const silentLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

export interface TestCoreOptions {
  queue?: AdminQueueClient;
  models?: ModelInfo[];
  progressIntervalMs?: number;
  logger?: typeof silentLogger;
}

export async function startTestCore(opts: TestCoreOptions = {}) {
  const queue = opts.queue ?? new MemoryQueue();
  const { core, close } = await createBotCore({
    queue,
    models: opts.models ?? [{ id: 'tiny-sd15', family: 'sd15', role: 'base', defaultSize: { width: 64, height: 64 } }],
    progressIntervalMs: opts.progressIntervalMs ?? 150,
    logger: opts.logger ?? silentLogger,
  });
  return { queue, core, close };
}
