/** Redis connections. BullMQ workers and blocking readers need `maxRetriesPerRequest: null` (see STACK.md). */
import { Redis } from 'ioredis';

export interface RedisOptions {
  /** Wait through reconnects instead of failing commands: nothing is lost while Redis is briefly away. */
  persistent?: boolean;
  /**
   * Send every command issued in one event-loop turn as one write (ioredis auto-pipelining). For our own commands
   * only: BullMQ's connections stay plain (its scripts assume their own command order and blocking reads).
   */
  autoPipeline?: boolean;
}

export function createRedis(url: string, opts: RedisOptions = {}): Redis {
  const redis = new Redis(url, {
    maxRetriesPerRequest: opts.persistent === false ? 20 : null,
    enableReadyCheck: true,
    enableAutoPipelining: opts.autoPipeline === true,
    // Reconnect quickly but without hammering a Redis that is restarting.
    retryStrategy: (times) => Math.min(50 * times, 1000),
  });
  // ioredis emits 'error' on every failed reconnect; without a listener Node would crash the process.
  redis.on('error', () => {});
  return redis;
}
