/**
 * The core's message model in Discord's terms: markdown content (≤ 2000 chars), files, and action rows of
 * buttons (≤ 5 rows × 5 buttons, custom_id ≤ 100 chars, both guaranteed by the core's button layout).
 */
import { ActionRowBuilder, AttachmentBuilder, ButtonBuilder, ButtonStyle, escapeMarkdown, MessageFlags } from 'discord.js';
import type { BotMessage, MessageButton } from '../core/messages.js';

/** https://discord.com/developers/docs/resources/message#create-message: content is at most 2000 characters. */
export const MAX_CONTENT = 2000;
/** Default per-file upload limit; interactions carry the real one (`attachment_size_limit`). */
export const DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024;

const STYLES: Record<MessageButton['style'], ButtonStyle> = {
  primary: ButtonStyle.Primary, secondary: ButtonStyle.Secondary, success: ButtonStyle.Success, danger: ButtonStyle.Danger,
};

export function renderContent(m: BotMessage): string {
  const head = [m.title ? `**${escapeMarkdown(m.title)}**` : '', m.mention ? `<@${m.mention}>` : ''].filter(Boolean).join(' · ');
  const text = [head, ...m.lines].filter(Boolean).join('\n');
  return text.length > MAX_CONTENT ? `${text.slice(0, MAX_CONTENT - 1)}…` : text;
}

function renderButton(b: MessageButton): ButtonBuilder {
  const button = new ButtonBuilder().setCustomId(b.id).setStyle(STYLES[b.style]);
  if (b.label) button.setLabel(b.label);
  if (b.emoji) button.setEmoji(b.emoji);
  return button;
}

/** Options for reply / editReply / message edit; `attachments: []` replaces the previous preview. */
export function renderPayload(m: BotMessage) {
  return {
    content: renderContent(m),
    files: m.images.map((i) => new AttachmentBuilder(Buffer.from(i.data.buffer, i.data.byteOffset, i.data.byteLength), { name: i.name })),
    attachments: [],
    components: m.buttons.map((row) => new ActionRowBuilder<ButtonBuilder>().addComponents(row.map(renderButton))),
    allowedMentions: { users: m.mention ? [m.mention] : [] },
  };
}

export function ephemeral(content: string) {
  return { content: content.slice(0, MAX_CONTENT), flags: MessageFlags.Ephemeral as const, allowedMentions: { parse: [] } };
}
