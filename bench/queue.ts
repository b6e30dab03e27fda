/**
 * `npm run bench:queue`: the queue's own costs on this machine, against a fresh redis-server.
 *  1. enqueue → start latency (p50 / p99), one job at a time, idle worker;
 *  2. no-op jobs per second (enqueue of N jobs to the last completed update), engine in a child process;
 *  3. end-to-end time of a tiny-sd15 job through the queue vs the same job in-process.
 * Targets: p99 ≤ 20 ms, ≥ 1000 no-op jobs/s.
 */
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { startRedis, type TestRedis } from '../test/helpers/redis-server.js';
import { FAKE_ENGINE, ROOT } from '../test/helpers/engine-procs.js';
import { generationRequestSchema, type GenerationRequest } from '../src/queue/job.js';
import type { JobUpdate } from '../src/queue/client.js';
import { RedisQueueClient } from '../src/queue/redis-client.js';
import { EngineWorker } from '../src/queue/worker.js';
import { ChildProcessEngine, DEFAULT_ENGINE_MODULE } from '../src/queue/child-engine.js';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { QueueKeys } from '../src/queue/keys.js';
import { decodeUpdate } from '../src/queue/events.js';

const LATENCY_JOBS = Number(process.env.BENCH_LATENCY_JOBS ?? 300);
const THROUGHPUT_JOBS = Number(process.env.BENCH_THROUGHPUT_JOBS ?? 3000);
const TINY = join(ROOT, 'test/fixtures/models/tiny-sd15');

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const ms = (x: number) => `${x.toFixed(1)} ms`;

let n = 0;
function request(model: string, prompt: string, user: string, extra: object = {}): GenerationRequest {
  return generationRequestSchema.parse({ model, prompt, seed: String(++n), steps: 1, origin: { platform: 'cli', userId: user }, ...extra });
}

function whenUpdate(c: RedisQueueClient, jobId: string, type: JobUpdate['type']): Promise<number> {
  return new Promise((resolve) => {
    const off = c.subscribe(jobId, (u) => {
      if (u.type === type || u.type === 'failed' || u.type === 'cancelled' || u.type === 'completed') {
        off();
        resolve(performance.now());
      }
    });
  });
}

async function worker(r: TestRedis, prefix: string, engineModule: string, model: { id: string; dir: string }, concurrency: number) {
  const engine = new ChildProcessEngine({ engineModule, redisUrl: r.url });
  await engine.start();
  const w = new EngineWorker({ redisUrl: r.url, prefix, engine, models: [{ ...model, load: true }], concurrency, progressIntervalMs: 200 });
  await w.start();
  return w;
}

/**
 * Enqueue → start: from just before enqueue() to the worker's 'started' update, timed by its stream entry id (Redis
 * server clock, same machine, 1 ms resolution) so a job that starts before enqueue() returns is timed right too.
 */
async function latency(r: TestRedis): Promise<void> {
  const prefix = 'bench-lat';
  const w = await worker(r, prefix, FAKE_ENGINE, { id: 'noop', dir: '/noop' }, 1);
  const c = await RedisQueueClient.connect({ redisUrl: r.url, prefix });
  const enqueuedAt = new Map<string, number>();
  for (let i = 0; i < LATENCY_JOBS + 20; i++) {
    const t0 = Date.now();
    const { jobId } = await c.enqueue(request('noop', 'noop', 'lat'));
    await whenUpdate(c, jobId, 'completed');
    if (i >= 20) enqueuedAt.set(jobId, t0); // the first jobs warm up connections and JIT
  }
  const redis = new Redis(r.url);
  const lat: number[] = [];
  for (const [id, fields] of await redis.xrange(new QueueKeys(prefix).events, '-', '+')) {
    const u = decodeUpdate(fields[fields.indexOf('u') + 1]!);
    const t0 = enqueuedAt.get(u.jobId);
    if (u.type === 'started' && t0 !== undefined) lat.push(Number(id.split('-')[0]) - t0);
  }
  redis.disconnect();
  console.log(`enqueue → start latency (${lat.length} jobs, idle worker): p50 ${ms(pct(lat, 50))}, p99 ${ms(pct(lat, 99))}, max ${ms(Math.max(...lat))}`);
  await c.close();
  await w.shutdown();
}

async function throughput(r: TestRedis, concurrency: number, workers: number): Promise<void> {
  const prefix = `bench-tp-${concurrency}-${workers}`;
  const ws = await Promise.all(Array.from({ length: workers }, () => worker(r, prefix, FAKE_ENGINE, { id: 'noop', dir: '/noop' }, concurrency)));
  const c = await RedisQueueClient.connect({ redisUrl: r.url, prefix, userCap: THROUGHPUT_JOBS });
  const t0 = performance.now();
  const dones: Promise<number>[] = [];
  const enqueueOne = async (i: number) => {
    const { jobId } = await c.enqueue(request('noop', 'noop', `tp${i % 100}`));
    dones.push(whenUpdate(c, jobId, 'completed'));
  };
  // Enqueue from 50 concurrent producers, as many bot processes and users would.
  let next = 0;
  await Promise.all(Array.from({ length: 50 }, async () => {
    while (next < THROUGHPUT_JOBS) await enqueueOne(next++);
  }));
  const tEnq = performance.now();
  const ends = await Promise.all(dones);
  const tEnd = Math.max(...ends);
  console.log(
    `no-op throughput, ${workers} worker(s) × concurrency ${concurrency}: ${THROUGHPUT_JOBS} jobs in ${((tEnd - t0) / 1000).toFixed(2)} s ` +
      `= ${Math.round(THROUGHPUT_JOBS / ((tEnd - t0) / 1000))} jobs/s end to end (enqueue alone: ${Math.round(THROUGHPUT_JOBS / ((tEnq - t0) / 1000))} jobs/s)`,
  );
  await c.close();
  await Promise.all(ws.map((w) => w.shutdown()));
}

/** Context for the figures above: plain BullMQ, empty processor, same Redis, same moment. */
async function bareBullmq(r: TestRedis): Promise<void> {
  const connection = { host: '127.0.0.1', port: r.port, maxRetriesPerRequest: null };
  const q = new Queue('bare', { connection, prefix: 'bench-bare' });
  await q.addBulk(Array.from({ length: THROUGHPUT_JOBS }, (_, i) => ({ name: 'j', data: { i }, opts: { priority: 1 + (i % 10) } })));
  const t0 = performance.now();
  let done = 0;
  await new Promise<void>((resolve) => {
    const w = new Worker('bare', async () => null, { connection, prefix: 'bench-bare', concurrency: 1 });
    w.on('completed', () => {
      if (++done === THROUGHPUT_JOBS) void w.close().then(() => resolve());
    });
  });
  console.log(`baseline: bare BullMQ worker, empty processor, concurrency 1: ${Math.round(THROUGHPUT_JOBS / ((performance.now() - t0) / 1000))} jobs/s`);
  await q.close();
}

async function tinyModel(r: TestRedis): Promise<void> {
  if (!existsSync(TINY)) {
    console.log('tiny-sd15 fixture missing: skipping the end-to-end comparison');
    return;
  }
  const { createEngine } = await import('../src/engine/create-engine.js');
  const local = await createEngine();
  await local.loadModel({ id: 'tiny-sd15', dir: TINY });
  const mk = () => request('tiny-sd15', 'a photo of a cat', 'tiny', { steps: 10, sampler: 'euler_a', width: 64, height: 64 });
  const runs = 10;
  await local.runJob(mk());
  const inProc: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await local.runJob(mk());
    inProc.push(performance.now() - t0);
  }
  await local.close();
  const prefix = 'bench-tiny';
  const w = await worker(r, prefix, DEFAULT_ENGINE_MODULE, { id: 'tiny-sd15', dir: TINY }, 1);
  const c = await RedisQueueClient.connect({ redisUrl: r.url, prefix });
  const viaQueue: number[] = [];
  for (let i = 0; i < runs + 1; i++) {
    const t0 = performance.now();
    const { jobId } = await c.enqueue(mk());
    const done = await new Promise<JobUpdate>((res) => c.subscribe(jobId, (u) => (u.type === 'completed' || u.type === 'failed') && res(u)));
    if (done.type !== 'completed') throw new Error(`tiny job failed: ${JSON.stringify(done)}`);
    await c.getImage(done.images[0]!.key);
    if (i > 0) viaQueue.push(performance.now() - t0);
  }
  console.log(
    `tiny-sd15 txt2img 64×64, 10 steps: in-process p50 ${ms(pct(inProc, 50))}; through the queue (enqueue → PNG in hand) p50 ${ms(pct(viaQueue, 50))}` +
      ` → queue overhead ≈ ${ms(pct(viaQueue, 50) - pct(inProc, 50))}`,
  );
  await c.close();
  await w.shutdown();
}

const r = await startRedis();
try {
  console.log(`redis ${r.url}; node ${process.version}`);
  await bareBullmq(r);
  await latency(r);
  await throughput(r, 1, 1);
  await throughput(r, 4, 1);
  await throughput(r, 1, 4);
  await throughput(r, 8, 2);
  await tinyModel(r);
} finally {
  await r.stop();
}
