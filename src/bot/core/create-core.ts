/**
 * One BotCore for a process, shared by every adapter it runs (Discord, Slack, web): one model cache, one set of
 * admin settings, one per-user count.
 */
import { pino } from 'pino';
import type { AdminQueueClient, QueueAdmin } from '../../queue/client.js';
import { loadModelsFile } from '../../engine/models-file.js';
import { BotCore, type Logger } from './bot-core.js';
import { BotState } from './bot-state.js';
import { modelInfosFromConfig } from './model-info.js';
import { ModelCatalog, type ModelInfo } from './models.js';
import { DefaultModelCache } from './default-models.js';
import { RedisStatePersistence } from './redis-state.js';
import { loadPromptTokenizers } from './tokenizers.js';
import type { PromptTokenizer } from './validate.js';
import { wordFilterFromEnv, type WordFilter } from './word-filter.js';

export interface CreateCoreOptions {
  queue: AdminQueueClient;
  /** Admin side of the queue when it is not `queue` itself. */
  queueAdmin?: QueueAdmin;
  /** Path of the engine's models file (families, roles, default sizes, tokenizers). */
  modelsFile?: string;
  /** Or the model facts directly. */
  models?: ModelInfo[];
  /** Where admin settings persist (REDIS_URL); in memory when absent. */
  redisUrl?: string;
  filter?: WordFilter;
  tokenizerFor?: (model: string) => PromptTokenizer | undefined;
  progressIntervalMs?: number;
  imageLimits?: { maxBytes: number; maxPixels: number };
  logger?: Logger;
  /** How often the live model list and the default models are refreshed. */
  modelRefreshMs?: number;
}

export interface CoreHandle {
  core: BotCore;
  close(): Promise<void>;
}

export async function createBotCore(opts: CreateCoreOptions): Promise<CoreHandle> {
  const config = opts.modelsFile ? loadModelsFile(opts.modelsFile) : null;
  const models = opts.models ?? (config ? modelInfosFromConfig(config) : []);
  const tokenizerFor = opts.tokenizerFor ?? (config ? await loadPromptTokenizers(config) : undefined);
  const catalog = new ModelCatalog(opts.queue, models);
  await catalog.start(opts.modelRefreshMs ?? 10_000);
  const persistence = opts.redisUrl ? new RedisStatePersistence(opts.redisUrl) : undefined;
  const state = new BotState(persistence);
  await state.load();
  const queueAdmin = opts.queueAdmin ?? opts.queue;
  const defaultModels = new DefaultModelCache(queueAdmin);
  await defaultModels.start(opts.modelRefreshMs ?? 10_000);
  const core = new BotCore({
    queue: opts.queue,
    catalog,
    state,
    filter: opts.filter ?? wordFilterFromEnv(process.env),
    logger: opts.logger ?? pino({ name: 'sdbot-bot' }),
    queueAdmin,
    defaultModels,
    ...(tokenizerFor ? { tokenizerFor } : {}),
    ...(opts.progressIntervalMs !== undefined ? { progressIntervalMs: opts.progressIntervalMs } : {}),
    ...(opts.imageLimits ? { imageLimits: opts.imageLimits } : {}),
  });
  return {
    core,
    close: async () => {
      catalog.stop();
      defaultModels.stop();
      await persistence?.close();
    },
  };
}
