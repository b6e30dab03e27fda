/**
 * `sdbot generate … --queue REDIS_URL`: submit one request through the queue, as a bot would, and wait for the
 * images. For operators testing a deployment from a terminal.
 */
import type { JobUpdate } from './client.js';
import { CancelledError, generationRequestSchema, type GenerationRequestInput } from './job.js';
import { RedisQueueClient } from './redis-client.js';

export class QueueJobFailedError extends Error {
  override readonly name = 'QueueJobFailedError';
}

export async function submitAndWait(
  redisUrl: string,
  request: GenerationRequestInput,
  onUpdate: (u: JobUpdate) => void = () => {},
  opts: { prefix?: string; timeoutMs?: number } = {},
): Promise<Uint8Array[]> {
  const client = await RedisQueueClient.connect({ redisUrl, prefix: opts.prefix });
  try {
    const { jobId, position } = await client.enqueue(generationRequestSchema.parse(request));
    onUpdate({ type: 'queued', jobId, position, etaMs: null });
    const terminal = await new Promise<JobUpdate>((resolve, reject) => {
      const timer = opts.timeoutMs
        ? setTimeout(() => reject(new Error(`no result for job ${jobId} after ${opts.timeoutMs} ms`)), opts.timeoutMs)
        : null;
      client.subscribe(jobId, (u) => {
        if (u.type !== 'queued' || u.position !== position) onUpdate(u);
        if (u.type === 'completed' || u.type === 'failed' || u.type === 'cancelled') {
          if (timer) clearTimeout(timer);
          resolve(u);
        }
      });
    });
    if (terminal.type === 'failed') throw new QueueJobFailedError(terminal.reason);
    if (terminal.type === 'cancelled') throw new CancelledError(`job ${jobId} was cancelled by ${terminal.by}`);
    if (terminal.type !== 'completed') throw new Error(`unexpected update ${terminal.type}`);
    const pngs: Uint8Array[] = [];
    for (const img of terminal.images) {
      const png = await client.getImage(img.key);
      if (!png) throw new QueueJobFailedError(`result image ${img.key} expired before it could be read`);
      pngs.push(png);
    }
    return pngs;
  } finally {
    await client.close();
  }
}
