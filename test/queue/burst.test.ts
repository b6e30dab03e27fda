/**
 * Crash safety under load, on real processes: Redis connections cut and restored mid-flight, and a burst of 500 jobs
 * across 3 workers with random SIGKILLs. "Exactly once from the user's view" is checked twice: each subscriber sees
 * one terminal update, and the update stream itself carries exactly one terminal update per job.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startProxy, startRedis, type CuttableProxy, type TestRedis } from '../helpers/redis-server.js';
import { killAllWorkers, spawnWorker, waitForWorker, type WorkerProc } from '../helpers/engine-procs.js';
import { follow, req, sleep, type Followed } from '../helpers/queue-harness.js';
import { RedisQueueClient } from '../../src/queue/redis-client.js';
import { QueueKeys } from '../../src/queue/keys.js';
import { decodeUpdate, isTerminal } from '../../src/queue/events.js';

let r: TestRedis;
let proxy: CuttableProxy;
let c: RedisQueueClient;
let redis: Redis;
const workers: WorkerProc[] = [];

function spawn(): WorkerProc {
  const w = spawnWorker({ redisUrl: proxy.url, prefix: r.prefix, models: ['/m/alpha'], args: ['--metrics-port', '0'] });
  workers.push(w);
  return w;
}

/** Terminal updates per job id as they appear in the update stream. */
async function terminalsInStream(): Promise<Map<string, number>> {
  const entries = await redis.xrange(new QueueKeys(r.prefix).events, '-', '+');
  const n = new Map<string, number>();
  for (const [, fields] of entries) {
    const u = decodeUpdate(fields[fields.indexOf('u') + 1]!);
    if (isTerminal(u)) n.set(u.jobId, (n.get(u.jobId) ?? 0) + 1);
  }
  return n;
}

async function expectEachCompletedOnce(ids: string[], followed: Followed[], prompts: string[]): Promise<void> {
  const stream = await terminalsInStream();
  for (const [i, id] of ids.entries()) {
    const f = followed[i]!;
    expect(f.terminals(), `job ${i}`).toHaveLength(1);
    const t = f.terminals()[0]!;
    expect(t.type, `job ${i}`).toBe('completed');
    expect(stream.get(id), `stream terminals of job ${i}`).toBe(1);
    if (t.type === 'completed' && i % 25 === 0) {
      const png = await c.getImage(t.images[0]!.key);
      expect(Buffer.from(png!).toString('latin1')).toContain(`alpha|${prompts[i]}|`);
    }
  }
}

beforeAll(async () => {
  r = await startRedis();
  proxy = await startProxy(r.port);
  redis = new Redis(r.url);
  c = await RedisQueueClient.connect({ redisUrl: proxy.url, prefix: r.prefix, userCap: 10, pollMs: 500, retry: { attempts: 5, backoffMs: 100 } });
  const ws = [spawn(), spawn(), spawn()];
  await Promise.all(ws.map((w) => waitForWorker(c, w, ['alpha'], 90_000)));
}, 120_000);

afterAll(async () => {
  await c?.close();
  await killAllWorkers();
  redis?.disconnect();
  await proxy?.close();
  await r?.stop();
});

describe('crash safety', () => {
  it('loses no job when every Redis connection drops for a while and comes back', async () => {
    const prompts = Array.from({ length: 30 }, (_, i) => `drop ${i} step=30`);
    const first = await Promise.all(prompts.slice(0, 20).map((p, i) => c.enqueue(req('alpha', p, `d${i % 5}`, { steps: 3 }))));
    const followed = first.map((j) => follow(c, j.jobId));
    await sleep(300);
    proxy.cut();
    // Enqueued while Redis is unreachable: the commands wait for the connection and go through afterwards.
    const during = Promise.all(prompts.slice(20).map((p, i) => c.enqueue(req('alpha', p, `e${i % 5}`, { steps: 3 }))));
    await sleep(2500);
    proxy.restore();
    const later = await during;
    followed.push(...later.map((j) => follow(c, j.jobId)));
    await Promise.all(followed.map((f) => f.terminal));
    await sleep(1000);
    await expectEachCompletedOnce([...first, ...later].map((j) => j.jobId), followed, prompts);
  }, 90_000);

  it('completes a burst of 500 jobs across 3 workers exactly once while workers are SIGKILLed at random', async () => {
    const N = 500;
    const prompts = Array.from({ length: N }, (_, i) => `burst ${i} step=4`);
    const ids: string[] = [];
    const followed: Followed[] = [];
    // 50 users × 10 jobs, enqueued user by user in parallel.
    await Promise.all(
      Array.from({ length: 50 }, async (_, u) => {
        for (let k = 0; k < 10; k++) {
          const i = u * 10 + k;
          const { jobId } = await c.enqueue(req('alpha', prompts[i]!, `burst-user-${u}`, { steps: 2 }));
          ids[i] = jobId;
          followed[i] = follow(c, jobId);
        }
      }),
    );
    let kills = 0;
    const killer = (async () => {
      while (kills < 3) {
        await sleep(700);
        const done = followed.filter((f) => f.terminals().length > 0).length;
        if (done === N) break;
        const live = workers.filter((w) => w.proc.exitCode === null && w.proc.signalCode === null);
        const victim = live[Math.floor(Math.random() * live.length)]!;
        await victim.kill('SIGKILL');
        kills++;
        spawn();
      }
    })();
    await Promise.all(followed.map((f) => f.terminal));
    await killer;
    await sleep(1000);
    expect(kills).toBeGreaterThanOrEqual(1);
    await expectEachCompletedOnce(ids, followed, prompts);
  }, 150_000);
});
