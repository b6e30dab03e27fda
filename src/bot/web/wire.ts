/**
 * What travels over the web chat's websocket. The page (public/app.js) is plain JavaScript and mirrors these
 * shapes; keep the two in step.
 */
import type { BotMessage, MessageButton } from '../core/messages.js';

export interface WireImage {
  /** Path on this server (/files/ID). */
  url: string;
  name: string;
}

export interface ChatAuthor {
  id: string;
  name: string;
  bot: boolean;
}

/** One message of the channel: a person's command or a bot message rendered from the core's message model. */
export interface ChatMessage {
  id: string;
  author: ChatAuthor;
  /** User messages: the text typed. */
  text?: string;
  kind?: BotMessage['kind'] | 'user';
  title?: string;
  lines: string[];
  images: WireImage[];
  buttons: MessageButton[][];
  mention?: string;
  replyTo?: string;
  final: boolean;
  /** Only the person it is for sees it (the web chat's ephemeral replies). */
  ephemeral?: boolean;
  ts: number;
}

export type ClientEvent =
  /** `secret`: random, kept in the browser; binds the user id to this browser (see IdentityBook). */
  | { type: 'hello'; userId: string; name: string; secret: string }
  /** `files`: uploads in order (image, then inpaint mask); `control`: an upload for the ControlNet control image slot. */
  | { type: 'send'; text: string; files?: string[]; control?: string; replyTo?: string }
  | { type: 'click'; messageId: string; buttonId: string };

export type ServerEvent =
  | { type: 'welcome'; you: ChatAuthor; history: ChatMessage[] }
  | { type: 'message'; message: ChatMessage }
  | { type: 'remove'; id: string };
