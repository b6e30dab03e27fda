/** `/metrics` (Prometheus text) and `/healthz` (JSON; 503 when unhealthy) for bot and worker processes. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface Health {
  ok: boolean;
  [detail: string]: unknown;
}

export interface ObservabilityServer {
  port: number;
  close(): Promise<void>;
}

export async function serveObservability(opts: {
  port: number;
  host?: string;
  registries: Registry[];
  health: () => Promise<Health> | Health;
}): Promise<ObservabilityServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = async () => {
      if (path === '/metrics') {
        const parts = await Promise.all(opts.registries.map((r) => r.metrics()));
        res.writeHead(200, { 'content-type': opts.registries[0]?.contentType ?? 'text/plain' });
        res.end(parts.join('\n'));
      } else if (path === '/healthz') {
        const h = await opts.health();
        res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify(h));
      } else {
        res.writeHead(404).end('not found\n');
      }
    };
    reply().catch((e: unknown) => {
      res.writeHead(500).end(String(e));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
