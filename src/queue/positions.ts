/**
 * Place in line and queue depth, read straight from BullMQ's structures for a model queue: the `wait` list (LPUSH in,
 * taken from the right), the `prioritized` sorted set (every job we add has a priority) and `delayed` (retries in
 * backoff). Reading them directly costs one round trip instead of listing jobs.
 */
import type { ChainableCommander, Redis } from 'ioredis';
import type { QueueKeys } from './keys.js';

type Results = [Error | null, unknown][];

/** Appends the 5 commands that locate one job; read them back with `positionFrom`. */
export function addPositionCommands(p: ChainableCommander, keys: QueueKeys, model: string, jobId: string): ChainableCommander {
  return p
    .llen(keys.waitList(model))
    .lpos(keys.waitList(model), jobId)
    .zrank(keys.prioritized(model), jobId)
    .zcard(keys.prioritized(model))
    .zscore(keys.delayed(model), jobId);
}

/** 1-based place in line, or null when the job is not waiting (running, finished or unknown). */
export function positionFrom(res: Results, offset: number): number | null {
  const v = (i: number) => res[offset + i]?.[1] as number | string | null | undefined;
  const waitLen = Number(v(0) ?? 0);
  const waitIdx = v(1);
  const rank = v(2);
  if (typeof waitIdx === 'number') return waitLen - waitIdx;
  if (typeof rank === 'number') return waitLen + rank + 1;
  if (v(4) !== null && v(4) !== undefined) return waitLen + Number(v(3) ?? 0) + 1;
  return null;
}

export async function positionOf(redis: Redis, keys: QueueKeys, model: string, jobId: string): Promise<number | null> {
  const res = (await addPositionCommands(redis.pipeline(), keys, model, jobId).exec()) ?? [];
  return positionFrom(res, 0);
}

/** Positions of many jobs of one model in three reads (whole lists: for periodic updates, not per job). */
export async function positionsOf(redis: Redis, keys: QueueKeys, model: string, jobIds: readonly string[]): Promise<Map<string, number>> {
  const res = (await redis
    .pipeline()
    .lrange(keys.waitList(model), 0, -1)
    .zrange(keys.prioritized(model), '0', '-1')
    .zrange(keys.delayed(model), '0', '-1')
    .exec()) ?? [];
  const wait = (res[0]?.[1] as string[] | undefined) ?? [];
  const prioritized = (res[1]?.[1] as string[] | undefined) ?? [];
  const delayed = (res[2]?.[1] as string[] | undefined) ?? [];
  const place = new Map<string, number>();
  wait.forEach((id, i) => place.set(id, wait.length - i));
  prioritized.forEach((id, i) => place.set(id, wait.length + i + 1));
  for (const id of delayed) place.set(id, wait.length + prioritized.length + 1);
  const out = new Map<string, number>();
  for (const id of jobIds) {
    const p = place.get(id);
    if (p !== undefined) out.set(id, p);
  }
  return out;
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
