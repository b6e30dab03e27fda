/**
 * Follows one queued job and turns its updates into messages: queue position, progress with previews, then the
 * result (grid or single image, fitted under the platform's upload limit, with caption and buttons) or a
 * readable failure.
 */
import type { JobUpdate, QueueClient, StoredImage } from '../../queue/client.js';
import type { GenerationRequest } from '../../queue/job.js';
import { resultButtons } from './actions.js';
import { uploadFiles } from './images.js';
import { captionLine, errorMessage, progressMessage, queuedMessage, resultMessage, startedMessage, titleFor, type BotMessage } from './messages.js';
import { ThrottledSink, type MessageSink } from './throttled-sink.js';

export interface FollowOptions {
  progressIntervalMs: number;
  /** Per-file upload limit of the platform (Discord: the interaction's attachment_size_limit). */
  maxUploadBytes: number;
  /** When the user asked: the caption shows the whole wait. */
  startedAt: number;
  /** Notes from validation (a cut prompt…) shown under the result. */
  notes?: string[];
  /** Give up waiting after this long without any update. */
  idleTimeoutMs?: number;
  onSinkError?: (err: unknown) => void;
}

export type JobOutcome = 'completed' | 'failed' | 'cancelled' | 'timeout';

export function followJob(
  queue: Pick<QueueClient, 'subscribe' | 'getImage'>,
  receipt: { jobId: string; position: number },
  request: GenerationRequest,
  sink: MessageSink,
  options: FollowOptions,
): Promise<JobOutcome> {
  const out = new ThrottledSink(sink, options.progressIntervalMs, options.onSinkError);
  const idleMs = options.idleTimeoutMs ?? 30 * 60_000;
  out.push(queuedMessage(request, receipt.position, null));

  return new Promise<JobOutcome>((resolve, reject) => {
    let done = false;
    let idle: NodeJS.Timeout | undefined;
    // The sink keeps only the newest message, so a preview must ride along on later progress updates that carry none,
    // or a throttled flush would drop it.
    let preview: Uint8Array | undefined;
    const finish = (outcome: JobOutcome, message: Promise<BotMessage> | BotMessage) => {
      if (done) return;
      done = true;
      clearTimeout(idle);
      unsubscribe();
      Promise.resolve(message)
        .catch((err: unknown) => errorMessage(`I couldn't prepare the result: ${err instanceof Error ? err.message : String(err)}`, titleFor(request)))
        .then((m) => out.finish(m))
        .then(() => resolve(outcome), reject);
    };
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => finish('timeout', errorMessage('No worker picked this job up in time; please try again later.', titleFor(request))), idleMs);
      idle.unref();
    };
    const onUpdate = (u: JobUpdate) => {
      armIdle();
      switch (u.type) {
        case 'queued':
          return out.push(queuedMessage(request, u.position, u.etaMs));
        case 'started':
          return out.push(startedMessage(request));
        case 'progress':
          preview = u.preview ?? preview;
          return out.push(progressMessage(request, u.step, u.total, preview));
        case 'completed':
          return finish('completed', buildResult(queue, u.jobId, request, u.images, [...(options.notes ?? []), ...u.notes], options));
        case 'failed':
          return finish('failed', errorMessage(`The job failed: ${readableReason(u.reason)}`, titleFor(request)));
        case 'cancelled':
          return finish('cancelled', errorMessage(`Cancelled${u.by ? ` by ${u.by}` : ''}.`, titleFor(request)));
      }
    };
    const unsubscribe = queue.subscribe(receipt.jobId, onUpdate);
    armIdle();
  });
}

async function buildResult(
  queue: Pick<QueueClient, 'getImage'>,
  jobId: string,
  request: GenerationRequest,
  stored: readonly StoredImage[],
  notes: string[],
  options: FollowOptions,
): Promise<BotMessage> {
  const pngs = await Promise.all(stored.map((s) => queue.getImage(s.key)));
  const present = pngs.filter((p): p is Uint8Array => p !== null);
  if (present.length === 0 || present.length !== pngs.length) {
    return errorMessage('The result expired before I could fetch it; please run it again.', titleFor(request));
  }
  const { files, dropped } = await uploadFiles(present, options.maxUploadBytes);
  const first = stored[0];
  const lines = [captionLine(request, first ? { width: first.width, height: first.height } : null, Date.now() - options.startedAt), ...notes];
  if (dropped > 0) lines.push(`${dropped} image(s) were too large to upload here.`);
  return resultMessage(request, files, resultButtons(jobId, present.length), lines);
}

/** Engine errors arrive as "BadRequestError: …" or with a stack; keep the sentence a person can act on. */
export function readableReason(reason: string): string {
  const firstLine = reason.split('\n')[0] ?? reason;
  const text = firstLine.replace(/^(Bad ?Request ?Error|Error|UserError):\s*/i, '').trim() || 'unknown error';
  return text.length > 400 ? `${text.slice(0, 399)}…` : text;
}
