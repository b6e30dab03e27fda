import { afterEach, describe, expect, it } from 'vitest';
import { ClientMetrics } from '../../src/queue/metrics.js';
import { serveBotObservability } from '../../src/bot/core/observability.js';
import type { ObservabilityServer } from '../../src/queue/http.js';

describe('bot /metrics and /healthz', () => {
  let srv: ObservabilityServer | null = null;
  afterEach(async () => {
    await srv?.close();
    srv = null;
  });

  it("serves the queue client's metrics and health, 503 when Redis is down", async () => {
    const metrics = new ClientMetrics();
    metrics.enqueued.inc({ model: 'tiny-sd15' });
    let ok = true;
    srv = await serveBotObservability({ metrics, health: async () => ({ ok, redis: ok ? 'ready' : 'reconnecting', workers: ok ? 1 : 0 }) }, 0, '127.0.0.1');
    const base = `http://127.0.0.1:${srv.port}`;
    expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/sdbot_enqueued_total\{model="tiny-sd15"\} 1/);
    const good = await fetch(`${base}/healthz`);
    expect(good.status).toBe(200);
    expect(await good.json()).toEqual({ ok: true, redis: 'ready', workers: 1, role: 'bot' });
    ok = false;
    const bad = await fetch(`${base}/healthz`);
    expect(bad.status).toBe(503);
    expect(((await bad.json()) as { redis: string }).redis).toBe('reconnecting');
  });
});
