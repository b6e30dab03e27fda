/**
 * The one channel of the web chat: its recent messages (sent to each page that connects) and the pages to tell
 * about changes. Bot messages are edited in place, like a Discord reply; their images live in the file store and
 * an edit frees the images it replaces (progress previews would otherwise pile up).
 */
import { randomBytes } from 'node:crypto';
import type { BotMessage } from '../core/messages.js';
import type { FileStore } from './file-store.js';
import type { ChatAuthor, ChatMessage, ServerEvent, WireImage } from './wire.js';

export const BOT_AUTHOR: ChatAuthor = { id: 'sdbot', name: 'sdbot', bot: true };

export interface Listener {
  userId: string | null;
  send(event: ServerEvent): void;
}

export function newMessageId(): string {
  return `m${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
}

function fileIdOf(image: WireImage): string {
  return image.url.slice(image.url.lastIndexOf('/') + 1);
}

export class Channel {
  private readonly messages = new Map<string, ChatMessage>();
  readonly listeners = new Set<Listener>();

  constructor(readonly files: FileStore, private readonly historyLimit = 200) {}

  get(id: string): ChatMessage | undefined {
    return this.messages.get(id);
  }

  /** What a page sees on connecting: public messages plus its user's own ephemeral ones. */
  history(userId: string): ChatMessage[] {
    return [...this.messages.values()].filter((m) => !m.ephemeral || m.mention === userId);
  }

  /** Adds or replaces a message and tells every page allowed to see it. */
  upsert(message: ChatMessage): void {
    const before = this.messages.get(message.id);
    if (before) {
      const kept = new Set(message.images.map(fileIdOf));
      for (const img of before.images) if (!kept.has(fileIdOf(img))) this.files.delete(fileIdOf(img));
    }
    this.messages.set(message.id, message);
    for (const [id, old] of this.messages) {
      if (this.messages.size <= this.historyLimit) break;
      this.remove(id, old);
    }
    this.broadcast({ type: 'message', message }, message.ephemeral ? message.mention : undefined);
  }

  remove(id: string, known = this.messages.get(id)): void {
    if (!known) return;
    this.messages.delete(id);
    for (const img of known.images) this.files.delete(fileIdOf(img));
    this.broadcast({ type: 'remove', id });
  }

  /** The core's message model as a chat message; its images go to the file store. */
  fromBot(id: string, m: BotMessage, replyTo?: string): ChatMessage {
    const images = m.images.map((img) => ({ url: `/files/${this.files.put({ bytes: img.data, mime: img.mime, name: img.name })}`, name: img.name }));
    return {
      id, author: BOT_AUTHOR, kind: m.kind, ...(m.title ? { title: m.title } : {}), lines: m.lines, images, buttons: m.buttons,
      ...(m.mention ? { mention: m.mention } : {}), ...(replyTo ? { replyTo } : {}), final: m.final, ts: Date.now(),
    };
  }

  /** A reply only `userId` sees: input errors and help, like Discord's ephemeral replies. */
  whisper(userId: string, lines: string[], replyTo?: string, kind: ChatMessage['kind'] = 'info'): void {
    this.upsert({
      id: newMessageId(), author: BOT_AUTHOR, kind, lines, images: [], buttons: [], mention: userId, ephemeral: true, final: true,
      ...(replyTo ? { replyTo } : {}), ts: Date.now(),
    });
  }

  private broadcast(event: ServerEvent, onlyUser?: string): void {
    for (const l of this.listeners) if (onlyUser === undefined || l.userId === onlyUser) l.send(event);
  }
}
