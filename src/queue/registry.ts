/**
 * Worker heartbeats: each engine worker writes its state under its own key with a TTL of a few intervals, and
 * indexes itself in a sorted set. A worker that stops heartbeating (killed, network gone) drops out of `list()`
 * once its key expires; routing (`models()`) only counts live workers.
 */
import type { Redis } from 'ioredis';
import type { WorkerDetails } from './client.js';
import type { QueueKeys } from './keys.js';

export type WorkerHeartbeat = WorkerDetails;

export const DEFAULT_HEARTBEAT_MS = 2000;

export class WorkerRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly keys: QueueKeys,
  ) {}

  async beat(hb: WorkerHeartbeat, ttlMs: number): Promise<void> {
    await this.redis
      .multi()
      .set(this.keys.worker(hb.id), JSON.stringify(hb), 'PX', ttlMs)
      .zadd(this.keys.workers, String(hb.lastSeen), hb.id)
      .exec();
  }

  async remove(id: string): Promise<void> {
    await this.redis.multi().del(this.keys.worker(id)).zrem(this.keys.workers, id).exec();
  }

  async list(): Promise<WorkerHeartbeat[]> {
    const ids = await this.redis.zrange(this.keys.workers, '0', '-1');
    if (ids.length === 0) return [];
    const vals = await this.redis.mget(ids.map((id) => this.keys.worker(id)));
    const live: WorkerHeartbeat[] = [];
    const gone: string[] = [];
    ids.forEach((id, i) => {
      const v = vals[i];
      if (v) live.push(JSON.parse(v) as WorkerHeartbeat);
      else gone.push(id);
    });
    if (gone.length > 0) await this.redis.zrem(this.keys.workers, ...gone);
    return live;
  }

  async models(): Promise<string[]> {
    const set = new Set<string>();
    for (const w of await this.list()) for (const m of w.models) set.add(m);
    return [...set].sort();
  }
}
