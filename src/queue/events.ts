/**
 * Job updates travel from workers to bots on one Redis stream. A stream (not pub/sub) because a reader that loses
 * its connection resumes from the last id it saw: updates published while Redis was unreachable to it are not lost.
 *
 * Guarantee: a job's terminal update (completed / failed / cancelled) is published at most once, atomically with
 * writing the job's `done` record (see `recordTerminal`). A job re-run after a worker crash finds the record and
 * publishes nothing, so the user sees one result.
 */
import type { Redis } from 'ioredis';
import type { JobUpdate } from './client.js';
import type { QueueKeys } from './keys.js';
import { LuaScript } from './script.js';

/** Stream length kept: enough for every live job's updates; terminal updates also survive in `done` records. */
const STREAM_MAXLEN = 20_000;

type Wire = Omit<JobUpdate, 'preview'> & { preview?: string };

export function encodeUpdate(u: JobUpdate): string {
  if (u.type === 'progress' && u.preview) {
    return JSON.stringify({ ...u, preview: Buffer.from(u.preview).toString('base64') });
  }
  return JSON.stringify(u);
}

export function decodeUpdate(s: string): JobUpdate {
  const w = JSON.parse(s) as Wire;
  if (w.type === 'progress' && typeof w.preview === 'string') {
    return { ...w, preview: new Uint8Array(Buffer.from(w.preview, 'base64')) } as JobUpdate;
  }
  return w as JobUpdate;
}

export function isTerminal(u: JobUpdate): boolean {
  return u.type === 'completed' || u.type === 'failed' || u.type === 'cancelled';
}

// KEYS: done record, events stream, user's job set, run-time stats hash, then one key per result image.
// ARGV: encoded update, ttl ms, stream maxlen, job id, model, run ms, then the image bytes (stored with the same ttl).
// One round trip finishes a job: images stored, terminal update recorded once and published, user's slot freed.
const RECORD_TERMINAL = new LuaScript(`
for i = 5, #KEYS do
  redis.call('SET', KEYS[i], ARGV[i + 2], 'PX', ARGV[2])
end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[4], ARGV[5], ARGV[6]) end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'j', ARGV[4], 'u', ARGV[1])
  redis.call('SREM', KEYS[3], ARGV[4])
  return 1
end
return 0`);

// KEYS: done record, cancel flag, events stream. ARGV: encoded 'started' update, maxlen, job id.
// Returns 'done' (a re-run of a finished job), 'cancel:<by>' (cancelled before it started) or 'ok' (started published).
const BEGIN = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 'done' end
local by = redis.call('GET', KEYS[2])
if by then return 'cancel:' .. by end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'j', ARGV[3], 'u', ARGV[1])
return 'ok'`);

export type BeginOutcome = { kind: 'run' } | { kind: 'done' } | { kind: 'cancelled'; by: string };

export class EventPublisher {
  constructor(
    private readonly redis: Redis,
    private readonly keys: QueueKeys,
    /** How long the terminal record lives (and so how long a re-run is recognised as a duplicate). */
    private readonly doneTtlMs: number,
  ) {}

  async publish(u: Exclude<JobUpdate, { type: 'completed' | 'failed' | 'cancelled' }>): Promise<void> {
    await this.redis.xadd(this.keys.events, 'MAXLEN', '~', STREAM_MAXLEN, '*', 'j', u.jobId, 'u', encodeUpdate(u));
  }

  /**
   * Writes the job's terminal update once; returns false when another run already did (a duplicate run).
   * `images` (already keyed) are stored in the same round trip; `runMs` feeds the wait estimates.
   */
  async recordTerminal(
    u: JobUpdate,
    userId: string,
    extra: { images?: { key: string; png: Uint8Array }[]; model?: string; runMs?: number } = {},
  ): Promise<boolean> {
    const images = extra.images ?? [];
    const r = await RECORD_TERMINAL.run(
      this.redis,
      [this.keys.done(u.jobId), this.keys.events, this.keys.userJobs(userId), this.keys.runStats, ...images.map((i) => i.key)],
      [
        encodeUpdate(u),
        this.doneTtlMs,
        STREAM_MAXLEN,
        u.jobId,
        extra.model ?? '',
        extra.runMs === undefined ? '' : String(Math.round(extra.runMs)),
        ...images.map((i) => Buffer.from(i.png.buffer, i.png.byteOffset, i.png.byteLength)),
      ],
    );
    return r === 1;
  }

  /** Before a run: is the job already finished or cancelled? If not, publishes 'started'. One round trip. */
  async begin(jobId: string, worker: string): Promise<BeginOutcome> {
    const r = String(
      await BEGIN.run(this.redis, [this.keys.done(jobId), this.keys.cancel(jobId), this.keys.events], [
        encodeUpdate({ type: 'started', jobId, worker }),
        STREAM_MAXLEN,
        jobId,
      ]),
    );
    if (r === 'done') return { kind: 'done' };
    if (r.startsWith('cancel:')) return { kind: 'cancelled', by: r.slice('cancel:'.length) };
    return { kind: 'run' };
  }

  async terminalOf(jobId: string): Promise<JobUpdate | null> {
    const s = await this.redis.get(this.keys.done(jobId));
    return s ? decodeUpdate(s) : null;
  }
}

/**
 * Reads the update stream on its own (blocking) connection and hands each update to `onUpdate`. Survives
 * connection drops: it retries from the last id it delivered.
 */
export class EventStreamReader {
  private lastId = '0-0';
  private stopped = false;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly keys: QueueKeys,
    private readonly onUpdate: (u: JobUpdate) => void,
    private readonly onReconnect: () => void = () => {},
  ) {}

  async start(): Promise<void> {
    const last = await this.redis.xrevrange(this.keys.events, '+', '-', 'COUNT', 1);
    this.lastId = last[0]?.[0] ?? '0-0';
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    let failed = false;
    while (!this.stopped) {
      try {
        const res = await this.redis.xread('COUNT', 1000, 'BLOCK', 2000, 'STREAMS', this.keys.events, this.lastId);
        if (failed) {
          failed = false;
          this.onReconnect();
        }
        for (const [, entries] of res ?? []) {
          for (const [id, fields] of entries) {
            this.lastId = id;
            const i = fields.indexOf('u');
            const raw = i >= 0 ? fields[i + 1] : undefined;
            if (raw !== undefined) this.onUpdate(decodeUpdate(raw));
          }
        }
      } catch {
        if (this.stopped) return;
        failed = true;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.redis.disconnect();
    await this.loop;
  }
}
