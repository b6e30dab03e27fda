/**
 * The follower turns queue updates into messages through a throttled sink that keeps only the newest one: a preview
 * must survive being superseded by later progress updates that carry none.
 */
import { describe, expect, it } from 'vitest';
import { followJob } from '../../src/bot/core/job-follower.js';
import type { BotMessage } from '../../src/bot/core/messages.js';
import type { JobUpdate } from '../../src/queue/client.js';
import { parseRequest } from '../../src/queue/job.js';

describe('followJob', () => {
  it('keeps the latest preview on progress messages that arrive without one', async () => {
    let push: ((u: JobUpdate) => void) | undefined;
    const queue = {
      subscribe: (_id: string, on: (u: JobUpdate) => void) => { push = on; return () => {}; },
      getImage: async () => null,
    };
    const sent: BotMessage[] = [];
    const request = parseRequest({ kind: 'txt2img', model: 'm', prompt: 'a fox', seed: '1', origin: { platform: 'web', userId: 'u' } });
    const outcome = followJob(queue, { jobId: 'j1', position: 0 }, request, async (m) => { sent.push(m); }, {
      progressIntervalMs: 40, maxUploadBytes: 1 << 20, startedAt: Date.now(),
    });
    const preview = new Uint8Array([137, 80, 78, 71]);
    push!({ type: 'progress', jobId: 'j1', step: 1, total: 3, preview });
    push!({ type: 'progress', jobId: 'j1', step: 2, total: 3 });
    push!({ type: 'progress', jobId: 'j1', step: 3, total: 3 });
    await new Promise((r) => setTimeout(r, 150));
    const last = sent.filter((m) => m.kind === 'progress').at(-1);
    expect(last?.lines.join(' ')).toContain('3/3');
    expect(last?.images.map((i) => i.data)).toEqual([preview]);
    push!({ type: 'failed', jobId: 'j1', reason: 'stop' });
    await expect(outcome).resolves.toBe('failed');
  });
});
