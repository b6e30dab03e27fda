/**
 * Where a job's messages go for a slash command or button: edits of the deferred reply, through the interaction's
 * webhook token. That token lives 15 minutes
 * (https://discord.com/developers/docs/interactions/receiving-and-responding#interaction-response-object); a job
 * that finishes later (a long queue) would be lost, so once Discord refuses the token (401, code 50027 "Invalid
 * Webhook Token") the final message is posted in the channel with the bot token instead, as a reply to the
 * deferred message and mentioning the person who asked. Progress after that point is dropped: nobody watches a
 * 15-minute-old progress message, and each edit would cost a REST call.
 */
import { DiscordAPIError, RESTJSONErrorCodes, type RepliableInteraction } from 'discord.js';
import type { Logger } from '../core/bot-core.js';
import { previewOf } from '../core/messages.js';
import type { MessageSink } from '../core/throttled-sink.js';
import { MAX_CONTENT, renderPayload } from './render.js';

export function isExpiredInteractionToken(err: unknown): boolean {
  return err instanceof DiscordAPIError && (err.code === RESTJSONErrorCodes.InvalidWebhookToken || err.status === 401);
}

export function interactionSink(i: RepliableInteraction, log: Logger, fallbackReplyTo: string | null = null): MessageSink {
  let replyTo = fallbackReplyTo;
  let expired = false;
  // an edit showing the same preview leaves the message's attachments alone instead of uploading the bytes again
  let shownPreview: Uint8Array | undefined;
  return async (m) => {
    if (!expired) {
      try {
        const payload = renderPayload(m);
        const preview = previewOf(m);
        const { files: _files, attachments: _attachments, ...keepAttachments } = payload;
        const same = preview !== undefined && preview === shownPreview;
        replyTo = (await i.editReply(same ? keepAttachments : payload)).id;
        shownPreview = preview;
        return;
      } catch (err) {
        if (!isExpiredInteractionToken(err)) throw err;
        expired = true;
        log.warn({ interaction: i.id, user: i.user.id, channel: i.channelId }, 'interaction token expired; posting the result in the channel');
      }
    }
    if (!m.final) return;
    const channel = i.channel ?? (i.channelId ? await i.client.channels.fetch(i.channelId) : null);
    if (!channel?.isSendable()) throw new Error(`cannot post in channel ${i.channelId ?? '(none)'} after the interaction token expired`);
    const { attachments: _replaced, content, allowedMentions, ...rest } = renderPayload(m);
    const mention = `<@${i.user.id}>`;
    const text = content.includes(mention) ? content : `${mention} ${content}`.slice(0, MAX_CONTENT);
    await channel.send({
      ...rest,
      content: text,
      allowedMentions: { users: [...new Set([...allowedMentions.users, i.user.id])], repliedUser: false },
      ...(replyTo ? { reply: { messageReference: replyTo, failIfNotExists: false } } : {}),
    });
  };
}
