/**
 * Real `sdbot engine` processes against a real Redis: routing across processes, lock renewal while the engine holds
 * the CPU (child process vs --in-process), engine crashes, SIGKILL of a worker mid-job, and graceful SIGTERM (finish,
 * or hand back after the grace period).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { killAllWorkers, spawnWorker, waitFor, waitForWorker, type WorkerProc } from '../helpers/engine-procs.js';
import { follow, req } from '../helpers/queue-harness.js';
import { RedisQueueClient } from '../../src/queue/redis-client.js';
import type { JobUpdate } from '../../src/queue/client.js';

let r: TestRedis;
let c: RedisQueueClient;
const w: Record<string, WorkerProc> = {};
const ids: Record<string, string> = {};

function startsOf(updates: JobUpdate[]): string[] {
  return updates.flatMap((u) => (u.type === 'started' ? [u.worker] : []));
}

function nameOf(workerId: string): string {
  return Object.entries(ids).find(([, id]) => id === workerId)?.[0] ?? workerId;
}

async function pause(...names: string[]): Promise<void> {
  for (const n of names) await c.control({ cmd: 'pause', worker: ids[n] });
  await waitFor(`${names.join(',')} paused`, async () => {
    const ws = await c.workers();
    return names.every((n) => ws.find((x) => x.id === ids[n])?.paused);
  });
}

async function resume(...names: string[]): Promise<void> {
  for (const n of names) await c.control({ cmd: 'resume', worker: ids[n] });
}

beforeAll(async () => {
  r = await startRedis();
  c = await RedisQueueClient.connect({ redisUrl: r.url, prefix: r.prefix, userCap: 50, pollMs: 300, retry: { attempts: 3, backoffMs: 100 } });
  const base = { redisUrl: r.url, prefix: r.prefix };
  w.W1 = spawnWorker({ ...base, models: ['/m/alpha', '/m/beta'] });
  w.W2 = spawnWorker({ ...base, models: ['/m/alpha'] });
  w.W3 = spawnWorker({ ...base, models: ['/m/alpha'], args: ['--in-process'] });
  w.W4 = spawnWorker({ ...base, models: ['/m/alpha'], args: ['--shutdown-grace-s', '0.3'] });
  const names = ['W1', 'W2', 'W3', 'W4'];
  const got = await Promise.all(names.map((n) => waitForWorker(c, w[n]!, n === 'W1' ? ['alpha', 'beta'] : ['alpha'], 90_000)));
  names.forEach((n, i) => (ids[n] = got[i]!));
  await pause('W3');
}, 120_000);

afterAll(async () => {
  await c?.close();
  await killAllWorkers();
  await r?.stop();
});

describe('engine worker processes', () => {
  it('routes beta jobs to the only worker holding beta, and serves /metrics and /healthz', async () => {
    const jobs = await Promise.all(['beta', 'alpha', 'beta', 'alpha', 'beta'].map((m, i) => c.enqueue(req(m, `route ${i}`, `u${i}`))));
    const fs = jobs.map((j) => follow(c, j.jobId));
    await Promise.all(fs.map((f) => f.terminal));
    fs.forEach((f, i) => {
      const starts = startsOf(f.updates);
      expect(starts).toHaveLength(1);
      if (i % 2 === 0) expect(nameOf(starts[0]!)).toBe('W1');
      else expect(['W1', 'W2', 'W4']).toContain(nameOf(starts[0]!));
    });
    const port = Number(/"port":(\d+),"msg":"serving \/metrics/.exec(w.W1!.output())?.[1]);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/sdbot_jobs_total\{model="beta",outcome="completed"\} 3/);
    expect(metrics).toContain('process_cpu_seconds_total');
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true, models: ['alpha', 'beta'] });
  });

  it('keeps the job lock while the engine holds the CPU far longer than the lock (engine in a child process)', async () => {
    // 8 × 400 ms of busy CPU against a 1.5 s lock checked every 0.5 s by the other workers.
    const { jobId } = await c.enqueue(req('alpha', 'busy step=400', 'cpu', { steps: 8 }));
    const f = follow(c, jobId);
    expect((await f.terminal).type).toBe('completed');
    expect(startsOf(f.updates)).toHaveLength(1);
    expect(f.updates.filter((u) => u.type === 'progress').length).toBeGreaterThanOrEqual(2);
  });

  it('loses the lock the same way with the engine on the main thread (--in-process), yet delivers one result', async () => {
    await pause('W1', 'W2', 'W4');
    await resume('W3');
    const { jobId } = await c.enqueue(req('alpha', 'busy step=400', 'cpu', { steps: 8 }));
    const f = follow(c, jobId);
    await waitFor('started on W3', async () => startsOf(f.updates).length > 0);
    expect(nameOf(startsOf(f.updates)[0]!)).toBe('W3');
    await resume('W1', 'W2', 'W4');
    await c.control({ cmd: 'pause', worker: ids.W3 });
    expect((await f.terminal).type).toBe('completed');
    // The stalled check gave the job to another worker while W3's event loop was blocked.
    expect(startsOf(f.updates).length).toBeGreaterThanOrEqual(2);
    await new Promise((res) => setTimeout(res, 2000));
    expect(f.terminals()).toHaveLength(1);
    await w.W3!.kill();
  });

  it('survives an engine crash: retries, then fails with a reason, and the worker keeps serving', async () => {
    const { jobId } = await c.enqueue(req('alpha', 'crash', 'crasher', { steps: 4 }));
    const done = await follow(c, jobId).terminal;
    expect(done.type === 'failed' && done.reason).toMatch(/^the engine failed: engine process exited/);
    const ok = await c.enqueue(req('alpha', 'next job', 'crasher'));
    const after = await follow(c, ok.jobId).terminal;
    expect(after.type === 'failed' ? after.reason : after.type).toBe('completed');
  });

  it('completes a job elsewhere, once, when its worker is SIGKILLed mid-job', async () => {
    await pause('W4');
    const { jobId } = await c.enqueue(req('alpha', 'step=150', 'victim', { steps: 12 }));
    const f = follow(c, jobId);
    await waitFor('progress', async () => f.updates.some((u) => u.type === 'progress'));
    const first = nameOf(startsOf(f.updates)[0]!);
    expect(['W1', 'W2']).toContain(first);
    await w[first]!.kill('SIGKILL');
    const done = await f.terminal;
    expect(done.type).toBe('completed');
    const starts = startsOf(f.updates).map(nameOf);
    expect(starts[0]).toBe(first);
    expect(starts.at(-1)).not.toBe(first);
    await new Promise((res) => setTimeout(res, 1500));
    expect(f.terminals()).toHaveLength(1);
    const png = await c.getImage(done.type === 'completed' ? done.images[0]!.key : '');
    expect(Buffer.from(png!).toString('latin1')).toContain('alpha|step=150|');
    ids.survivor = ids[first === 'W1' ? 'W2' : 'W1']!;
    w.survivor = w[first === 'W1' ? 'W2' : 'W1']!;
  });

  it('on SIGTERM lets the running job finish, then exits cleanly', async () => {
    const { jobId } = await c.enqueue(req('alpha', 'step=100', 'term', { steps: 15 }));
    const f = follow(c, jobId);
    await waitFor('progress', async () => f.updates.some((u) => u.type === 'progress'));
    expect(startsOf(f.updates)).toEqual([ids.survivor]);
    w.survivor!.proc.kill('SIGTERM');
    expect(await w.survivor!.exited).toBe(0);
    const done = await f.terminal;
    expect(done.type).toBe('completed');
    expect(startsOf(f.updates)).toEqual([ids.survivor]);
  });

  it('on SIGTERM past the grace period hands the job back; another worker finishes it', async () => {
    await resume('W4');
    const { jobId } = await c.enqueue(req('alpha', 'step=100', 'term', { steps: 30 }));
    const f = follow(c, jobId);
    await waitFor('progress', async () => f.updates.some((u) => u.type === 'progress'));
    expect(startsOf(f.updates)).toEqual([ids.W4]);
    const W5 = spawnWorker({ redisUrl: r.url, prefix: r.prefix, models: ['/m/alpha'] });
    w.W4!.proc.kill('SIGTERM');
    expect(await w.W4!.exited).toBe(0);
    const id5 = await waitForWorker(c, W5, ['alpha'], 90_000);
    const done = await f.terminal;
    expect(done.type).toBe('completed');
    expect(startsOf(f.updates)).toEqual([ids.W4, id5]);
  }, 120_000);
});
