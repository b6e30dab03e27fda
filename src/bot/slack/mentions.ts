/**
 * Remix by mention: a message that mentions the bot and carries a picture (or replies in the thread of one) makes
 * an img2img job with the message's text as prompt (flags allowed); a second picture is the inpaint mask. As on
 * Discord, the thread's first message comes first, then the reply's own files. With `--control canny|none` the newest
 * picture is a ControlNet control image instead (see image-slots.ts). Results go into the thread; errors are shown
 * only to the sender (chat.postEphemeral).
 */
import type { App, types } from '@slack/bolt';
import type { Origin } from '../../queue/job.js';
import { helpText } from '../core/help.js';
import { imageSlots } from '../core/image-slots.js';
import { logIfUnexpected, slackUserMessage, type SlackDeps } from './deps.js';
import { imageFiles, remoteFromSlackFile, SLACK_UPLOAD_LIMIT, type SlackFile } from './files.js';
import { slackSink } from './message-sink.js';
import { fileIdsOf, toMrkdwn, unescapeSlack } from './render.js';
import type { RemoteImage } from '../core/validate.js';

type Client = Parameters<Parameters<App['event']>[1]>[0]['client'];
type Mention = types.AppMentionEvent & { files?: SlackFile[] };

export function registerMentions(app: App, deps: SlackDeps): void {
  app.event('app_mention', async ({ event, client, context }) => {
    const e = event as Mention;
    if (e.bot_id || !e.user) return;
    await deps.afterAck.turn(); // Bolt acked the event already; other requests' acks still go first
    const threadTs = e.thread_ts ?? e.ts;
    try {
      await remix(e, threadTs, client, context.botUserId, deps);
    } catch (err) {
      logIfUnexpected(deps, err, { user: e.user, channel: e.channel }, 'mention remix failed');
      await client.chat.postEphemeral({ channel: e.channel, user: e.user, thread_ts: threadTs, text: toMrkdwn(slackUserMessage(err)) }).catch(() => undefined);
    }
  });
}

/** The thread's first message's pictures: files people posted, or the image blocks of our own result. */
async function parentPictures(client: Client, channel: string, threadTs: string): Promise<RemoteImage[]> {
  const res = await client.conversations.replies({ channel, ts: threadTs, limit: 1, inclusive: true });
  const parent = res.messages?.[0] as { ts?: string; files?: SlackFile[]; blocks?: unknown } | undefined;
  if (!parent || parent.ts !== threadTs) return [];
  const own = await Promise.all(fileIdsOf(parent.blocks).map(async (file) => (await client.files.info({ file })).file as SlackFile | undefined));
  return [...imageFiles(parent.files), ...own.map((f) => (f ? remoteFromSlackFile(f) : null)).filter((r): r is RemoteImage => r !== null)];
}

async function remix(e: Mention, threadTs: string, client: Client, botUserId: string | undefined, deps: SlackDeps): Promise<void> {
  const startedAt = Date.now();
  const user = e.user ?? '';
  const text = unescapeSlack((botUserId ? e.text.replace(new RegExp(`<@${botUserId}(\\|[^>]*)?>`, 'g'), ' ') : e.text).trim());
  const inThread = e.thread_ts !== undefined && e.thread_ts !== e.ts;
  const pictures = [...(inThread ? await parentPictures(client, e.channel, threadTs) : []), ...imageFiles(e.files)];
  if (pictures.length === 0) {
    const hint = 'Reply in the thread of a picture (or attach one) and mention me to remix it. For new pictures use `/imagine`.';
    await client.chat.postEphemeral({ channel: e.channel, user, thread_ts: threadTs, text: toMrkdwn(`${hint}\n\n${helpText()}`) });
    return;
  }
  const origin: Origin = { platform: 'slack', userId: user, channelId: e.channel, replyTo: threadTs, ...(e.team ? { guildId: e.team } : {}) };
  const draft = deps.core.prepare({ text, images: imageSlots(pictures, text), origin });
  const request = await deps.core.attachImages(draft, deps.fetchPolicy);
  const out = slackSink(client, { channel: e.channel, threadTs }, deps.core.options.logger);
  await deps.core.run(request, out.sink, { maxUploadBytes: SLACK_UPLOAD_LIMIT, startedAt, notes: draft.notes });
}
