/** Keeps the bot's admin settings in one Redis key, so every bot process and restart sees the same ones. */
import { Redis } from 'ioredis';
import type { BotStateSnapshot, StatePersistence } from './bot-state.js';

const KEY = 'sdbot:bot:state';

export class RedisStatePersistence implements StatePersistence {
  private readonly redis: Redis;

  constructor(url: string) {
    this.redis = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 3 });
  }

  async load(): Promise<BotStateSnapshot | null> {
    const raw = await this.redis.get(KEY);
    return raw ? (JSON.parse(raw) as BotStateSnapshot) : null;
  }

  async save(snapshot: BotStateSnapshot): Promise<void> {
    await this.redis.set(KEY, JSON.stringify(snapshot));
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => undefined);
  }
}
