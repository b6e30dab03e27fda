/**
 * The core's message model in Slack's terms: mrkdwn sections, image blocks pointing at files the bot uploaded
 * (`slack_file`), and actions blocks of buttons. Limits: section text ≤ 3000 chars, ≤ 50 blocks, ≤ 25 elements
 * per actions block, button value ≤ 2000 chars (the core's action ids are ≤ 100).
 * https://docs.slack.dev/reference/block-kit/blocks
 */
import type { types } from '@slack/bolt';
import type { BotMessage, MessageButton } from '../core/messages.js';

type KnownBlock = types.KnownBlock;

const SECTION_MAX = 3000;
const MAX_BLOCKS = 50;
const ACTIONS_MAX = 25;
/** Image blocks carry the file id in their block_id too, so a click finds the picture however Slack echoes the block. */
export const IMAGE_BLOCK_PREFIX = 'sdimg-';

/** Slack's three control characters (https://docs.slack.dev/messaging/formatting-message-text#escaping). */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** What a person typed: Slack sends `&`, `<` and `>` in message and command text as entities. */
export function unescapeSlack(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** The core writes Discord-style `**bold**`; Slack's bold is `*bold*`. Code spans are the same on both. */
export function toMrkdwn(text: string): string {
  return escapeMrkdwn(text).replace(/\*\*(.+?)\*\*/g, '*$1*');
}

export function headline(m: BotMessage): string {
  // A `*` inside the prompt would end the bold early; a look-alike keeps it readable.
  const title = m.title ? `*${escapeMrkdwn(m.title).replace(/\*/g, '∗')}*` : '';
  return [title, m.mention ? `<@${m.mention}>` : ''].filter(Boolean).join(' · ');
}

/** The whole message as mrkdwn: the notification text and what the sections show. */
export function messageText(m: BotMessage): string {
  return [headline(m), ...m.lines.map(toMrkdwn)].filter(Boolean).join('\n');
}

/** Text cut into section-sized pieces at line breaks. */
export function sections(text: string): KnownBlock[] {
  const out: string[] = [];
  let cur = '';
  for (const line of text.split('\n')) {
    const piece = line.length > SECTION_MAX ? `${line.slice(0, SECTION_MAX - 1)}…` : line;
    if (cur && cur.length + 1 + piece.length > SECTION_MAX) {
      out.push(cur);
      cur = piece;
    } else cur = cur ? `${cur}\n${piece}` : piece;
  }
  if (cur) out.push(cur);
  return out.map((t) => ({ type: 'section', text: { type: 'mrkdwn', text: t } }));
}

function button(b: MessageButton): types.Button {
  const label = [b.emoji, b.label].filter(Boolean).join(' ') || b.id;
  // Slack has two styles besides the default; secondary is the default look.
  const style = b.style === 'danger' ? 'danger' : b.style === 'primary' || b.style === 'success' ? 'primary' : undefined;
  // action_id must be unique within the message, and the value is what the click hands back: both are the action id.
  return { type: 'button', action_id: b.id, value: b.id, text: { type: 'plain_text', text: label, emoji: true }, ...(style ? { style } : {}) };
}

/** Blocks for a message whose images were uploaded as `fileIds` (same order as `m.images`). */
export function renderBlocks(m: BotMessage, fileIds: readonly string[]): { text: string; blocks: KnownBlock[] } {
  const text = messageText(m);
  const blocks: KnownBlock[] = [...sections(text)];
  fileIds.forEach((id, i) => {
    blocks.push({ type: 'image', block_id: `${IMAGE_BLOCK_PREFIX}${id}`, slack_file: { id }, alt_text: m.title ? `${m.title} (${m.images[i]?.name ?? 'image'})`.slice(0, 2000) : (m.images[i]?.name ?? 'image') });
  });
  for (const row of m.buttons) {
    for (let k = 0; k < row.length; k += ACTIONS_MAX) blocks.push({ type: 'actions', elements: row.slice(k, k + ACTIONS_MAX).map(button) });
  }
  return { text: text.slice(0, 3900), blocks: blocks.slice(0, MAX_BLOCKS) };
}

/** File ids of the pictures a message of ours shows, read back from its blocks. */
export function fileIdsOf(blocks: unknown): string[] {
  if (!Array.isArray(blocks)) return [];
  const ids: string[] = [];
  for (const b of blocks as { type?: string; block_id?: string; slack_file?: { id?: string } }[]) {
    if (b.type !== 'image') continue;
    const id = b.slack_file?.id ?? (b.block_id?.startsWith(IMAGE_BLOCK_PREFIX) ? b.block_id.slice(IMAGE_BLOCK_PREFIX.length) : undefined);
    if (id) ids.push(id);
  }
  return ids;
}
