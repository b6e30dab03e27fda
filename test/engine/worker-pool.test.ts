/** Back-to-back jobs reuse the noise workers: a finishing worker is waited for, not replaced by a new one. */
import { describe, expect, it } from 'vitest';
import { acquireWorker, releaseWhenDone, releaseWorker } from '../../src/engine/sampling/worker-pool.js';

const NAME = 'noise-worker';

describe('worker pool', () => {
  it('hands a finishing worker to the next job once it is done', async () => {
    const w = await acquireWorker(NAME);
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    releaseWhenDone(NAME, w, done);
    let got: unknown = null;
    const next = acquireWorker(NAME).then((x) => (got = x));
    await new Promise((r) => setTimeout(r, 30));
    expect(got).toBeNull(); // still finishing: the job waits for it
    finish();
    await next;
    expect(got).toBe(w);
    releaseWorker(NAME, w);
  });

  it('puts a finished worker nobody waited for back in the idle pool', async () => {
    const w = await acquireWorker(NAME);
    releaseWhenDone(NAME, w, Promise.resolve());
    await new Promise((r) => setTimeout(r, 0));
    const again = await acquireWorker(NAME);
    expect(again).toBe(w);
    releaseWorker(NAME, again);
  });
});
