/**
 * Queue semantics on a real Redis with in-process workers on the fake engine: routing, results and TTLs, fairness,
 * priorities, cancel, retries, timeouts, admin commands, metrics. Process-level guarantees (crashes, SIGTERM, lock
 * renewal) are in processes.test.ts and burst.test.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { entry, follow, inProcessWorker, req, sleep } from '../helpers/queue-harness.js';
import { waitFor } from '../helpers/engine-procs.js';
import { ModelNotLoadedError, RedisQueueClient, UserCapError } from '../../src/queue/redis-client.js';
import type { EngineWorker } from '../../src/queue/worker.js';
import { QueueKeys } from '../../src/queue/keys.js';
import { decodeUpdate } from '../../src/queue/events.js';
import { serveObservability } from '../../src/queue/http.js';
import { BadRequestError } from '../../src/queue/job.js';
import { readFileSync } from 'node:fs';

let r: TestRedis;
let redis: Redis;
const workers: EngineWorker[] = [];
const clients: RedisQueueClient[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'sdbot-queue-'));

async function client(o: Partial<Parameters<typeof RedisQueueClient.connect>[0]> = {}): Promise<RedisQueueClient> {
  const c = await RedisQueueClient.connect({ redisUrl: r.url, prefix: r.prefix, retry: { attempts: 3, backoffMs: 50 }, pollMs: 200, ...o });
  clients.push(c);
  return c;
}

async function worker(...a: Parameters<typeof inProcessWorker> extends [unknown, ...infer R] ? R : never): Promise<EngineWorker> {
  const w = await inProcessWorker(r, ...a);
  workers.push(w);
  return w;
}

beforeAll(async () => {
  r = await startRedis();
  redis = new Redis(r.url);
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.shutdown(1000)));
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

afterAll(async () => {
  redis?.disconnect();
  await r?.stop();
});

describe('routing by model', () => {
  it('runs each job on a worker that holds its model, and refuses a model nobody serves', async () => {
    const wa = await worker([entry('alpha')]);
    const wb = await worker([entry('beta')]);
    const c = await client();
    expect(await c.models()).toEqual(['alpha', 'beta']);
    const jobs = await Promise.all(['alpha', 'beta', 'alpha', 'beta'].map((m, i) => c.enqueue(req(m, `p${i}`, `user${i}`))));
    const followed = jobs.map((j) => follow(c, j.jobId));
    const done = await Promise.all(followed.map((f) => f.terminal));
    expect(done.map((d) => d.type)).toEqual(['completed', 'completed', 'completed', 'completed']);
    const ranOn = followed.map((f) => f.updates.find((u) => u.type === 'started'));
    expect(ranOn.map((s) => (s?.type === 'started' ? s.worker : null))).toEqual([wa.id, wb.id, wa.id, wb.id]);

    const err = await c.enqueue(req('gamma', 'x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelNotLoadedError);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as Error).message).toMatch(/Model "gamma" is not loaded.*an admin can load it.*alpha, beta/);
  });
});

describe('results', () => {
  it('stores images under their own keys with a TTL, keeps the request, and returns only keys from BullMQ', async () => {
    await worker([entry('alpha')], { resultTtlMs: 1500 });
    const c = await client({ resultTtlMs: 1500, requestTtlMs: 60_000 });
    const request = req('alpha', 'a red fox', 'fox-user', { count: 2 });
    const { jobId, position } = await c.enqueue(request);
    expect(position).toBe(1);
    const done = await follow(c, jobId).terminal;
    if (done.type !== 'completed') throw new Error(`job ${done.type}`);
    expect(done.images.map((i) => i.seed)).toEqual([request.seed, String(BigInt(request.seed) + 1n)]);
    const png = await c.getImage(done.images[0]!.key);
    expect(Buffer.from(png!).subarray(1, 4).toString()).toBe('PNG');
    expect(Buffer.from(png!).toString('latin1')).toContain(`alpha|a red fox|${request.seed}`);
    const ttl = await redis.pttl(done.images[0]!.key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1500);
    const reqTtl = await redis.pttl(new QueueKeys(r.prefix).request(jobId));
    expect(reqTtl).toBeGreaterThan(50_000);
    expect(await c.getRequest(jobId)).toEqual(request);

    const q = new Queue('gen-alpha', { connection: redis, prefix: r.prefix });
    const job = await q.getJob(jobId);
    expect(JSON.stringify(job?.returnvalue)).not.toContain('base64');
    expect(job?.returnvalue).toEqual({ outcome: 'completed', images: done.images.map((i) => i.key) });
    await q.close();

    await sleep(1700);
    expect(await c.getImage(done.images[0]!.key)).toBeNull();
    expect(await c.getRequest(jobId)).toEqual(request);
  });

  it('replays the terminal update to a subscriber that arrives after the job finished', async () => {
    await worker([entry('alpha')]);
    const c = await client();
    const { jobId } = await c.enqueue(req('alpha', 'late'));
    await waitFor('job done', async () => (await redis.exists(new QueueKeys(r.prefix).done(jobId))) === 1);
    const f = follow(c, jobId);
    expect((await f.terminal).type).toBe('completed');
    await sleep(500);
    expect(f.terminals()).toHaveLength(1);
  });

  it('replays started and the latest progress to a subscriber that arrives mid-job', async () => {
    await worker([entry('alpha')]);
    const c = await client();
    const { jobId } = await c.enqueue(req('alpha', 'step=60', 'u', { steps: 10 }));
    await sleep(300);
    const f = follow(c, jobId);
    expect(f.updates[0]).toMatchObject({ type: 'started' });
    expect(f.updates[1]).toMatchObject({ type: 'progress' });
    expect((await f.terminal).type).toBe('completed');
    expect(f.updates.filter((u) => u.type === 'queued')).toEqual([]);
  });

  it('moves attachments into Redis so a remote engine can read them', async () => {
    await worker([entry('alpha')]);
    const c = await client();
    const ref = await c.putInput(new Uint8Array([1, 2, 3]));
    expect(ref.kind).toBe('redis');
    const { jobId } = await c.enqueue(req('alpha', 'img', 'u', { kind: 'img2img', initImage: { kind: 'bytes', base64: 'AQID' } }));
    const stored = await c.getRequest(jobId);
    expect(stored?.initImage?.kind).toBe('redis');
    const key = stored?.initImage?.kind === 'redis' ? stored.initImage.key : '';
    expect([...(await c.getImage(key))!]).toEqual([1, 2, 3]);
  });
});

describe('fairness', () => {
  it('interleaves users round-robin, caps each user, and lets a priority job jump the line', async () => {
    const c = await client({ userCap: 3 });
    const w = await worker([entry('alpha')]);
    await c.control({ cmd: 'pause' });
    await waitFor('worker paused', async () => (await c.workers()).every((x) => x.paused));
    const ids: Record<string, string> = {};
    for (const name of ['A1', 'A2', 'A3']) ids[name] = (await c.enqueue(req('alpha', name, 'userA'))).jobId;
    await expect(c.enqueue(req('alpha', 'A4', 'userA'))).rejects.toBeInstanceOf(UserCapError);
    await expect(c.enqueue(req('alpha', 'A4', 'userA'))).rejects.toThrow(/already have 3 jobs queued or running/);
    for (const name of ['B1', 'B2']) ids[name] = (await c.enqueue(req('alpha', name, 'userB'))).jobId;
    const pos = await c.enqueue(req('alpha', 'C1', 'userC'));
    ids.C1 = pos.jobId;
    expect(pos.position).toBe(3); // behind A1 and B1, ahead of A2
    ids.ADMIN = (await c.enqueue(req('alpha', 'ADMIN', 'admin'), { priority: 10 })).jobId;

    const order: string[] = [];
    const names = Object.fromEntries(Object.entries(ids).map(([k, v]) => [v, k]));
    const followed = Object.values(ids).map((id) => {
      const f = follow(c, id);
      c.subscribe(id, (u) => u.type === 'started' && order.push(names[id]!));
      return f;
    });
    await c.control({ cmd: 'resume' });
    await Promise.all(followed.map((f) => f.terminal));
    expect(order).toEqual(['ADMIN', 'A1', 'B1', 'C1', 'A2', 'B2', 'A3']);
    expect(w.isPaused).toBe(false);
    // Slots are free again once jobs finish.
    await c.enqueue(req('alpha', 'A5', 'userA'));
  });

  it('reports queued position and an estimate to subscribers', async () => {
    const c = await client();
    await worker([entry('alpha')]);
    await c.control({ cmd: 'pause' });
    await waitFor('worker paused', async () => (await c.workers()).every((x) => x.paused));
    const a = await c.enqueue(req('alpha', 'one', 'p1'));
    const b = await c.enqueue(req('alpha', 'two', 'p2'));
    expect([a.position, b.position]).toEqual([1, 2]);
    const fb = follow(c, b.jobId);
    await waitFor('queued update', async () => fb.updates.find((u) => u.type === 'queued'));
    expect(fb.updates[0]).toMatchObject({ type: 'queued', position: 2 });
    await c.control({ cmd: 'resume' });
    await fb.terminal;
    expect(fb.updates.map((u) => u.type)).toContain('started');
  });
});

describe('jobs left without a worker', () => {
  it('fails a waiting job once no live worker has held its model for the grace period', async () => {
    const grace = 700;
    const c = await client({ unservedGraceMs: grace });
    const w = await worker([entry('alpha')]);
    await c.control({ cmd: 'pause' });
    await waitFor('worker paused', async () => (await c.workers()).every((x) => x.paused));
    const { jobId } = await c.enqueue(req('alpha', 'stranded', 'lonely'));
    const f = follow(c, jobId);
    // A paused worker still holds the model: the job keeps waiting past the grace period.
    await sleep(grace + 500);
    expect(f.terminals()).toEqual([]);
    await w.shutdown(1000);
    const gone = Date.now();
    const t = await f.terminal;
    expect(Date.now() - gone).toBeGreaterThanOrEqual(grace - 50);
    expect(t).toMatchObject({ type: 'failed', reason: 'no engine worker holds model alpha any more; an admin can load it' });
    const keys = new QueueKeys(r.prefix);
    expect(await redis.sismember(keys.userJobs('lonely'), jobId)).toBe(0);
    expect(await redis.exists(keys.bullJob('alpha', jobId))).toBe(0);
    await sleep(300);
    expect(f.terminals()).toHaveLength(1);
  });
});

describe('cancel', () => {
  it('removes a queued job; only its owner or an admin may cancel', async () => {
    const c = await client();
    await worker([entry('alpha')]);
    await c.control({ cmd: 'pause' });
    await waitFor('worker paused', async () => (await c.workers()).every((x) => x.paused));
    const { jobId } = await c.enqueue(req('alpha', 'to cancel', 'owner'));
    const f = follow(c, jobId);
    expect(await c.cancel(jobId, { userId: 'someone', isAdmin: false })).toBe('forbidden');
    expect(await c.cancel(jobId, { userId: 'owner', isAdmin: false })).toBe('cancelled');
    expect(await f.terminal).toEqual({ type: 'cancelled', jobId, by: 'owner' });
    expect(await c.cancel(jobId, { userId: 'owner', isAdmin: false })).toBe('finished');
    expect(await c.cancel('nope', { userId: 'owner', isAdmin: true })).toBe('not-found');
    await c.control({ cmd: 'resume' });
    await sleep(300);
    expect(f.updates.map((u) => u.type).filter((t) => t !== 'queued')).toEqual(['cancelled']);
    // The cancelled job gave its slot back.
    await c.enqueue(req('alpha', 'again', 'owner'));
    await c.enqueue(req('alpha', 'again', 'owner'));
  });

  it('stops a running job between steps', async () => {
    const c = await client();
    await worker([entry('alpha')]);
    const { jobId } = await c.enqueue(req('alpha', 'step=50', 'owner', { steps: 100 }));
    const f = follow(c, jobId);
    await waitFor('progress', async () => f.updates.find((u) => u.type === 'progress' && u.step >= 2));
    const t0 = Date.now();
    expect(await c.cancel(jobId, { userId: 'boss', isAdmin: true })).toBe('cancelled');
    expect(await f.terminal).toEqual({ type: 'cancelled', jobId, by: 'boss' });
    expect(Date.now() - t0).toBeLessThan(1000);
    const last = f.updates.filter((u) => u.type === 'progress').at(-1);
    expect(last?.type === 'progress' && last.step).toBeLessThan(100);
  });
});

describe('failures', () => {
  it('retries transient engine failures with backoff, then succeeds', async () => {
    const c = await client();
    await worker([entry('alpha')]);
    const file = join(tmp, 'fail2');
    const { jobId } = await c.enqueue(req('alpha', `fail=2@${file}`));
    const f = follow(c, jobId);
    expect((await f.terminal).type).toBe('completed');
    expect(readFileSync(file, 'utf8')).toHaveLength(3);
    expect(f.terminals()).toHaveLength(1);
  });

  it('gives up after the last attempt with a readable reason', async () => {
    const c = await client();
    await worker([entry('alpha')]);
    const file = join(tmp, 'fail9');
    const { jobId } = await c.enqueue(req('alpha', `fail=9@${file}`));
    const done = await follow(c, jobId).terminal;
    expect(done).toMatchObject({ type: 'failed', reason: 'the engine failed: transient failure 3 of 9' });
    expect(readFileSync(file, 'utf8')).toHaveLength(3);
  });

  it('never retries a bad request and passes its message on', async () => {
    const c = await client();
    await worker([entry('alpha')]);
    const file = join(tmp, 'bad');
    const { jobId } = await c.enqueue(req('alpha', `fail=0@${file} bad`));
    const done = await follow(c, jobId).terminal;
    expect(done).toEqual({ type: 'failed', jobId, reason: 'the fake engine refuses "bad" prompts' });
    await sleep(300);
    expect(readFileSync(file, 'utf8')).toHaveLength(1);
  });

  it('stops a job that runs past its timeout and does not retry it', async () => {
    const c = await client();
    await worker([entry('alpha')], { jobTimeoutMs: 300 });
    const file = join(tmp, 'slow');
    const { jobId } = await c.enqueue(req('alpha', `fail=0@${file} step=50`, 'u', { steps: 100 }));
    const done = await follow(c, jobId).terminal;
    expect(done.type === 'failed' && done.reason).toMatch(/longer than 0 s|longer than/);
    await sleep(300);
    expect(readFileSync(file, 'utf8')).toHaveLength(1);
  });
});

describe('progress', () => {
  it('sends progress for every step it can and previews at most every previewIntervalMs', async () => {
    const c = await client();
    await worker([entry('alpha')], { previewIntervalMs: 300 });
    const { jobId } = await c.enqueue(req('alpha', 'step=50', 'u', { steps: 20, previews: true }));
    await follow(c, jobId).terminal;
    // What the worker published, read from the update stream: a follower polling `done` records may see the
    // terminal update before the stream delivers the last progress, and then rightly drops that progress.
    const published = (await redis.xrange(new QueueKeys(r.prefix).events, '-', '+'))
      .map(([, fields]) => decodeUpdate(fields[fields.indexOf('u') + 1]!))
      .filter((u) => u.jobId === jobId);
    const progress = published.filter((u) => u.type === 'progress');
    const previews = progress.filter((u) => u.type === 'progress' && u.preview);
    expect(progress.at(-1)).toMatchObject({ step: 20, total: 20 });
    expect(previews.length).toBeGreaterThanOrEqual(2);
    expect(previews.length).toBeLessThanOrEqual(5);
  });
});

describe('control channel', () => {
  it('loads and unloads models on workers, and resolves default models per scope', async () => {
    const c = await client();
    const w = await worker([entry('alpha'), entry('beta', false)], { defaultModel: 'alpha' });
    expect(await c.models()).toEqual(['alpha']);
    expect((await c.workerDetails())[0]?.available).toEqual(['alpha', 'beta']);
    await c.control({ cmd: 'load', model: 'beta' });
    await waitFor('beta loaded', async () => (await c.workers())[0]?.models.includes('beta'));
    const { jobId } = await c.enqueue(req('beta', 'on demand'));
    expect((await follow(c, jobId).terminal).type).toBe('completed');
    await c.control({ cmd: 'unload', model: 'beta', worker: w.id });
    await waitFor('beta unloaded', async () => !(await c.workers())[0]?.models.includes('beta'));

    expect(await c.defaultModelFor({})).toBe('alpha');
    await c.setDefaultModel({ kind: 'global' }, 'beta');
    await c.setDefaultModel({ kind: 'guild', id: 'g1' }, 'gamma');
    await c.setDefaultModel({ kind: 'channel', id: 'c1' }, 'delta');
    expect(await c.defaultModelFor({ guildId: 'g2' })).toBe('beta');
    expect(await c.defaultModelFor({ guildId: 'g1', channelId: 'c2' })).toBe('gamma');
    expect(await c.defaultModelFor({ guildId: 'g1', channelId: 'c1' })).toBe('delta');
    await c.setDefaultModel({ kind: 'global' }, null);
  });

  it('drains a worker: it finishes the running job, then leaves', async () => {
    const c = await client();
    let drained = false;
    const w = await worker([entry('alpha')], { onDrained: () => (drained = true) });
    const { jobId } = await c.enqueue(req('alpha', 'step=50', 'u', { steps: 6 }));
    const f = follow(c, jobId);
    await waitFor('started', async () => f.updates.find((u) => u.type === 'started'));
    await c.control({ cmd: 'drain', worker: w.id });
    expect((await f.terminal).type).toBe('completed');
    await waitFor('drained', async () => drained);
    await waitFor('worker gone', async () => (await c.workers()).length === 0);
  });
});

describe('observability', () => {
  it('serves /metrics and /healthz', async () => {
    const c = await client();
    const w = await worker([entry('alpha')]);
    const { jobId } = await c.enqueue(req('alpha', 'metrics'));
    await follow(c, jobId).terminal;
    const srv = await serveObservability({ port: 0, host: '127.0.0.1', registries: [w.metrics.registry, c.metrics.registry], health: () => w.health() });
    try {
      const m = await (await fetch(`http://127.0.0.1:${srv.port}/metrics`)).text();
      expect(m).toMatch(/sdbot_jobs_total\{model="alpha",outcome="completed"\} 1/);
      expect(m).toMatch(/sdbot_queue_depth\{model="alpha"\} 0/);
      expect(m).toMatch(/sdbot_job_wait_seconds_count\{model="alpha"\} 1/);
      expect(m).toMatch(/sdbot_enqueued_total\{model="alpha"\} 1/);
      const h = await fetch(`http://127.0.0.1:${srv.port}/healthz`);
      expect(h.status).toBe(200);
      expect(await h.json()).toMatchObject({ ok: true, models: ['alpha'] });
    } finally {
      await srv.close();
    }
  });
});
