/**
 * Reply-with-image: replying to a message that has a picture (or attaching one) and mentioning the bot makes an
 * img2img job with the reply's text as the prompt (flags allowed); a second picture is the inpaint mask. Needs the
 * Message Content intent. Errors are answered as replies (messages have no ephemeral replies).
 */
import type { Client, Message } from 'discord.js';
import type { Origin } from '../../queue/job.js';
import type { BotCore } from '../core/bot-core.js';
import { userMessageFor } from '../core/errors.js';
import { helpText } from '../core/help.js';
import type { FetchPolicy } from '../core/fetch-image.js';
import type { MessageSink } from '../core/throttled-sink.js';
import { imagesOf } from './attachments.js';
import { imageSlots } from '../core/image-slots.js';
import { DEFAULT_UPLOAD_LIMIT, renderPayload } from './render.js';

export interface MessageDeps {
  core: BotCore;
  client: Client;
  fetchPolicy: Omit<FetchPolicy, 'maxBytes' | 'maxPixels'>;
}

export function mentionsBot(message: Message, botId: string): boolean {
  return !message.author.bot && message.mentions.users.has(botId);
}

/** The first call replies to the user's message; later calls edit that reply. */
function messageSink(message: Message): MessageSink {
  let sent: Message | null = null;
  return async (m) => {
    if (!sent) sent = await message.reply(renderPayload(m));
    else await sent.edit(renderPayload(m));
  };
}

export async function handleMessage(message: Message, deps: MessageDeps): Promise<void> {
  const botId = deps.client.user?.id;
  if (!botId || !mentionsBot(message, botId)) return;
  const startedAt = Date.now();
  try {
    const text = message.content.replace(new RegExp(`<@!?${botId}>`, 'g'), ' ').trim();
    const referenced = message.reference?.messageId ? await message.fetchReference().catch(() => null) : null;
    const pictures = [...(referenced ? imagesOf(referenced.attachments) : []), ...imagesOf(message.attachments)];
    if (pictures.length === 0) {
      await message.reply({ content: `Reply to a picture (or attach one) and mention me to remix it. For new pictures use \`/imagine\`.\n\n${helpText()}`.slice(0, 2000), allowedMentions: { repliedUser: false } });
      return;
    }
    const origin: Origin = {
      platform: 'discord', userId: message.author.id, userName: message.author.username, replyTo: message.id,
      channelId: message.channelId, ...(message.guildId ? { guildId: message.guildId } : {}),
    };
    const draft = deps.core.prepare({ text, images: imageSlots(pictures, text), origin });
    const request = await deps.core.attachImages(draft, deps.fetchPolicy);
    await deps.core.run(request, messageSink(message), { maxUploadBytes: DEFAULT_UPLOAD_LIMIT, startedAt, notes: draft.notes });
  } catch (err) {
    if (!(err instanceof Error && (err.name === 'UserError' || err.name === 'BadRequestError'))) {
      deps.core.options.logger.error({ err: err instanceof Error ? err.stack : String(err), message: message.id }, 'reply-with-image failed');
    }
    await message.reply({ content: `⚠️ ${userMessageFor(err)}`, allowedMentions: { repliedUser: false } }).catch(() => undefined);
  }
}
