/**
 * One Slack message per job: the first message of the job is posted (in the channel, or the thread it was asked
 * in), later ones edit it with chat.update. Previews and results are uploaded first and shown by image blocks;
 * a preview's file is deleted once the next edit has replaced it, so a job leaves only its result behind.
 */
import type { webApi } from '@slack/bolt';
import type { Logger } from '../core/bot-core.js';
import { previewOf, type BotMessage } from '../core/messages.js';
import type { MessageSink } from '../core/throttled-sink.js';
import { uploadImages } from './files.js';
import { renderBlocks } from './render.js';

type WebClient = webApi.WebClient;

export interface SlackTarget {
  channel: string;
  /** Post into this thread (the ts of its first message). */
  threadTs?: string;
}

export interface SlackSink {
  sink: MessageSink;
  /** ts of the job's message once posted. */
  ts(): string | undefined;
}

/** Waits before showing a just-uploaded result again when Slack refused its image block. */
export const IMAGE_RETRY_DELAYS_MS = [500, 1500, 3000];

function isInvalidBlocks(err: unknown): boolean {
  return (err as { data?: { error?: string } } | null)?.data?.error === 'invalid_blocks';
}

export function slackSink(client: WebClient, target: SlackTarget, logger: Logger): SlackSink {
  let ts: string | undefined;
  let previewFiles: string[] = [];
  // the same preview keeps its uploaded file
  let previewData: Uint8Array | undefined;
  const deliver = async (m: BotMessage, fileIds: readonly string[]) => {
    const { text, blocks } = renderBlocks(m, fileIds);
    if (!ts) {
      const res = await client.chat.postMessage({
        channel: target.channel, text, blocks, unfurl_links: false, unfurl_media: false,
        ...(target.threadTs ? { thread_ts: target.threadTs } : {}),
      });
      ts = res.ts;
      if (res.channel) target = { ...target, channel: res.channel };
    } else {
      await client.chat.update({ channel: target.channel, ts, text, blocks });
    }
  };
  const sink: MessageSink = async (m) => {
    const preview = previewOf(m);
    const same = preview !== undefined && previewFiles.length > 0 && preview === previewData;
    const fileIds = same ? previewFiles : await uploadImages(client, m.images);
    try {
      await deliver(m, fileIds);
    } catch (err) {
      // Slack can refuse an image block while it is still processing the file. A preview is not worth waiting
      // for (the next edit brings a newer one); a result is retried, then the error stands.
      if (!isInvalidBlocks(err) || fileIds.length === 0) throw err;
      if (!m.final) {
        logger.warn({ err: String(err) }, 'preview image refused; edited without it');
        await deliver(m, []);
      } else {
        await retryResult(() => deliver(m, fileIds), err);
      }
    }
    if (same) return;
    const stale = previewFiles;
    previewFiles = m.kind === 'result' ? [] : fileIds;
    previewData = preview;
    for (const file of stale) {
      client.files.delete({ file }).catch((err: unknown) => logger.warn({ err: String(err), file }, 'could not delete a preview file'));
    }
  };
  return { sink, ts: () => ts };
}

async function retryResult(attempt: () => Promise<void>, first: unknown): Promise<void> {
  let last = first;
  for (const ms of IMAGE_RETRY_DELAYS_MS) {
    await new Promise((r) => setTimeout(r, ms));
    try {
      return await attempt();
    } catch (err) {
      if (!isInvalidBlocks(err)) throw err;
      last = err;
    }
  }
  throw last;
}
