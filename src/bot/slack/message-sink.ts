/**
 * One Slack message per job: the first message of the job is posted (in the channel, or the thread it was asked
 * in), later ones edit it with chat.update. Previews and results are uploaded first and shown by image blocks;
 * a preview's file is deleted once the next edit has replaced it, so a job leaves only its result behind.
 */
import type { webApi } from '@slack/bolt';
import type { Logger } from '../core/bot-core.js';
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

export function slackSink(client: WebClient, target: SlackTarget, logger: Logger): SlackSink {
  let ts: string | undefined;
  let previewFiles: string[] = [];
  const sink: MessageSink = async (m) => {
    const fileIds = await uploadImages(client, m.images);
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
    const stale = previewFiles;
    previewFiles = m.kind === 'result' ? [] : fileIds;
    for (const file of stale) {
      client.files.delete({ file }).catch((err: unknown) => logger.warn({ err: String(err), file }, 'could not delete a preview file'));
    }
  };
  return { sink, ts: () => ts };
}
