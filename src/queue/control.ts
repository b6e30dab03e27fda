/**
 * The control channel: admin commands from any bot process to the engine workers (Redis pub/sub), and the default
 * model settings per server / channel / workspace (a Redis hash the bots read). Pub/sub is enough for commands an
 * admin issues and can see the effect of in `workers()`; job cancellation does not rely on it alone (see cancel
 * keys in worker.ts).
 */
import { z } from 'zod';
import type { Redis } from 'ioredis';
import type { DefaultModelScope } from './client.js';
import type { Origin } from './job.js';
import type { QueueKeys } from './keys.js';

export const controlMessageSchema = z.discriminatedUnion('cmd', [
  /** Load a model: by id from the worker's models file, or from `dir`. Without `worker`, every worker that knows it. */
  z.object({ cmd: z.literal('load'), model: z.string(), dir: z.string().optional(), worker: z.string().optional() }),
  z.object({ cmd: z.literal('unload'), model: z.string(), worker: z.string().optional() }),
  /** Stop taking new jobs (the running one finishes). */
  z.object({ cmd: z.literal('pause'), worker: z.string().optional() }),
  z.object({ cmd: z.literal('resume'), worker: z.string().optional() }),
  /** Finish the running job, take no more, and exit. */
  z.object({ cmd: z.literal('drain'), worker: z.string().optional() }),
  /** Stop a running job between steps. */
  z.object({ cmd: z.literal('cancel'), jobId: z.string(), by: z.string() }),
]);
export type ControlMessage = z.infer<typeof controlMessageSchema>;

export async function sendControl(redis: Redis, keys: QueueKeys, msg: ControlMessage): Promise<void> {
  await redis.publish(keys.control, JSON.stringify(msg));
}

/** Subscribes `sub` (a connection used for nothing else) to the control channel. */
export async function listenControl(
  sub: Redis,
  keys: QueueKeys,
  onMessage: (m: ControlMessage) => void,
  onBadMessage: (raw: string, err: unknown) => void = () => {},
): Promise<void> {
  sub.on('message', (channel: string, raw: string) => {
    if (channel !== keys.control) return;
    let msg: ControlMessage;
    try {
      msg = controlMessageSchema.parse(JSON.parse(raw));
    } catch (e) {
      onBadMessage(raw, e);
      return;
    }
    onMessage(msg);
  });
  await sub.subscribe(keys.control);
}

export type DefaultScope = DefaultModelScope;

function scopeField(s: DefaultScope): string {
  return s.kind === 'global' ? 'global' : `${s.kind}:${s.id}`;
}

function fieldScope(f: string): DefaultScope | null {
  if (f === 'global') return { kind: 'global' };
  const i = f.indexOf(':');
  const kind = f.slice(0, i);
  return kind === 'guild' || kind === 'channel' ? { kind, id: f.slice(i + 1) } : null;
}

export class DefaultModels {
  constructor(
    private readonly redis: Redis,
    private readonly keys: QueueKeys,
  ) {}

  /** `model` null clears the setting for that scope. */
  async set(scope: DefaultScope, model: string | null): Promise<void> {
    if (model === null) await this.redis.hdel(this.keys.defaults, scopeField(scope));
    else await this.redis.hset(this.keys.defaults, scopeField(scope), model);
  }

  async get(scope: DefaultScope): Promise<string | null> {
    return (await this.redis.hget(this.keys.defaults, scopeField(scope))) || null;
  }

  async list(): Promise<{ scope: DefaultScope; model: string }[]> {
    const all = await this.redis.hgetall(this.keys.defaults);
    return Object.entries(all).flatMap(([f, model]) => {
      const scope = fieldScope(f);
      return scope && model ? [{ scope, model }] : [];
    });
  }

  /** The most specific setting for where a request came from: channel, then server/workspace, then global. */
  async resolve(origin: Pick<Origin, 'guildId' | 'channelId'>): Promise<string | null> {
    const fields = [
      origin.channelId ? scopeField({ kind: 'channel', id: origin.channelId }) : null,
      origin.guildId ? scopeField({ kind: 'guild', id: origin.guildId }) : null,
      'global',
    ].filter((f): f is string => f !== null);
    const vals = await this.redis.hmget(this.keys.defaults, ...fields);
    return vals.find((v): v is string => typeof v === 'string' && v.length > 0) ?? null;
  }
}
