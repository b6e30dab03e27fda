/**
 * `/metrics` and `/healthz` for a bot process (`sdbot bot` / `sdbot start`): the queue client's metrics (enqueued,
 * rejected, end-to-end times, failures, queue depth) and its health (Redis connection, live workers).
 */
import type { QueueHealth } from '../../queue/client.js';
import { serveObservability, type ObservabilityServer } from '../../queue/http.js';
import type { ClientMetrics } from '../../queue/metrics.js';

export interface ObservableQueue {
  readonly metrics: Pick<ClientMetrics, 'registry'>;
  health(): Promise<QueueHealth>;
}

/** Port 0 picks a free port (see the returned `port`). */
export function serveBotObservability(client: ObservableQueue, port: number, host = '0.0.0.0'): Promise<ObservabilityServer> {
  return serveObservability({
    port,
    host,
    registries: [client.metrics.registry],
    health: async () => ({ ...(await client.health()), role: 'bot' }),
  });
}
