/**
 * Fairness between users, on plain BullMQ priorities.
 *
 * - Cap: a user may have at most `cap` jobs queued or running (default 2). Admission is one Lua script, so two
 *   concurrent enqueues cannot both take the last slot. Jobs with a priority (admins, configured roles) skip the cap.
 * - Round-robin: a job's BullMQ priority is its owner's rank — 1 for the user's oldest live job, 2 for the next… —
 *   and BullMQ runs equal priorities first-in-first-out. So with A1 A2 A3 queued before B1, the order is A1 B1 A2 A3:
 *   every user's n-th job runs before anyone's (n+1)-th (fair queueing by virtual start time).
 * - Priority: a higher `EnqueueOptions.priority` maps to a lower BullMQ number, ahead of every rank.
 */
import type { Redis } from 'ioredis';
import type { QueueKeys } from './keys.js';
import { LuaScript } from './script.js';

export const DEFAULT_USER_CAP = 2;
/** Priorities 0 (everyone) … MAX_PRIORITY (most urgent). */
export const MAX_PRIORITY = 100;
/** Ranks beyond this share one priority level (still FIFO among themselves). */
const RANK_SPAN = 1024;
const ADD_GRACE_MS = 30_000;

/** BullMQ priority: 1 runs first, up to 2^21-1. */
export function bullPriority(rank: number, priority = 0): number {
  const p = Math.max(0, Math.min(MAX_PRIORITY, Math.round(priority)));
  return (MAX_PRIORITY - p) * RANK_SPAN + Math.max(1, Math.min(RANK_SPAN - 1, rank));
}

// KEYS[1]: the user's job set, KEYS[2] (optional): a record to write when admitted. ARGV: cap, job id, bypass (1/0),
// set expiry ms, then the record's value and ttl ms. Returns the rank, or -count when full (nothing written then).
const ADMIT = new LuaScript(`
local n = redis.call('SCARD', KEYS[1])
if ARGV[3] == '0' and n >= tonumber(ARGV[1]) then return -n end
redis.call('SADD', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if KEYS[2] then redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[6]) end
return n + 1`);

/** A record written in the same round trip as a successful admission (the job's stored request). */
export interface AdmitRecord {
  key: string;
  value: string;
  ttlMs: number;
}

export class UserSlots {
  constructor(
    private readonly redis: Redis,
    private readonly keys: QueueKeys,
    private readonly cap = DEFAULT_USER_CAP,
    /** A slot is held at most this long even if a job's end was never recorded (a safety net, not the mechanism). */
    private readonly maxHoldMs = 24 * 60 * 60 * 1000,
  ) {}

  /**
   * Takes a slot for `jobId`. Returns the job's rank among the user's live jobs, or null when the user is at the cap.
   * Slots are released when the job's terminal update is recorded (EventPublisher.recordTerminal).
   */
  async admit(userId: string, jobId: string, bypassCap: boolean, record?: AdmitRecord): Promise<number | null> {
    const keys = [this.keys.userJobs(userId), ...(record ? [record.key] : [])];
    const args = [this.cap, jobId, bypassCap ? 1 : 0, this.maxHoldMs, ...(record ? [record.value, record.ttlMs] : [])];
    const tryAdmit = async () => Number(await ADMIT.run(this.redis, keys, args));
    let r = await tryAdmit();
    if (r <= 0) {
      // Only a full set can hide slots held by jobs that ended without a recorded end: look for them then.
      if (await this.dropStale(userId)) r = await tryAdmit();
    }
    return r > 0 ? r : null;
  }

  async release(userId: string, jobId: string): Promise<void> {
    await this.redis.srem(this.keys.userJobs(userId), jobId);
  }

  get limit(): number {
    return this.cap;
  }

  /** Members whose job ended without a recorded end (BullMQ gave up on a stalled job, or it was removed by hand). */
  private async dropStale(userId: string): Promise<boolean> {
    const key = this.keys.userJobs(userId);
    const ids = await this.redis.smembers(key);
    if (ids.length === 0) return false;
    const p = this.redis.pipeline();
    for (const id of ids) p.exists(this.keys.done(id)).get(this.keys.request(id));
    const res = (await p.exec()) ?? [];
    const stale: string[] = [];
    const check = this.redis.pipeline();
    const checked: string[] = [];
    ids.forEach((id, i) => {
      const done = res[2 * i]?.[1] as number | undefined;
      const req = res[2 * i + 1]?.[1] as string | null | undefined;
      if (done === 1 || !req) {
        stale.push(id);
        return;
      }
      const rec = JSON.parse(req) as { request: { model: string }; enqueuedAt: number };
      // A job admitted a moment ago may not be in BullMQ yet (enqueue admits, then adds).
      if (Date.now() - rec.enqueuedAt < ADD_GRACE_MS) return;
      const model = rec.request.model;
      check.exists(this.keys.bullJob(model, id));
      checked.push(id);
    });
    if (checked.length > 0) {
      const ex = (await check.exec()) ?? [];
      checked.forEach((id, i) => {
        if (ex[i]?.[1] === 0) stale.push(id);
      });
    }
    if (stale.length > 0) await this.redis.srem(key, ...stale);
    return stale.length > 0;
  }
}
