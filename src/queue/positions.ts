/**
 * Place in line and queue depth, read straight from BullMQ's structures for a model queue: the `wait` list (LPUSH in,
 * taken from the right), the `prioritized` sorted set (every job we add has a priority) and `delayed` (retries in
 * backoff). Reading them directly costs one round trip instead of listing jobs.
 */
import type { Redis } from 'ioredis';
import type { QueueKeys } from './keys.js';

/** 1-based place in line, or null when the job is not waiting (running, finished or unknown). */
export async function positionOf(redis: Redis, keys: QueueKeys, model: string, jobId: string): Promise<number | null> {
  const res = await redis
    .pipeline()
    .llen(keys.waitList(model))
    .lpos(keys.waitList(model), jobId)
    .zrank(keys.prioritized(model), jobId)
    .zcard(keys.prioritized(model))
    .zscore(keys.delayed(model), jobId)
    .exec();
  const v = (i: number) => res?.[i]?.[1] as number | string | null | undefined;
  const waitLen = Number(v(0) ?? 0);
  const waitIdx = v(1);
  const rank = v(2);
  if (typeof waitIdx === 'number') return waitLen - waitIdx;
  if (typeof rank === 'number') return waitLen + rank + 1;
  if (v(4) !== null && v(4) !== undefined) return waitLen + Number(v(3) ?? 0) + 1;
  return null;
}

export async function queueDepths(redis: Redis, keys: QueueKeys, models: readonly string[]): Promise<Record<string, number>> {
  if (models.length === 0) return {};
  const p = redis.pipeline();
  for (const m of models) p.llen(keys.waitList(m)).zcard(keys.prioritized(m)).zcard(keys.delayed(m));
  const res = (await p.exec()) ?? [];
  const out: Record<string, number> = {};
  models.forEach((m, i) => {
    out[m] = [0, 1, 2].reduce((s, k) => s + Number(res[3 * i + k]?.[1] ?? 0), 0);
  });
  return out;
}
