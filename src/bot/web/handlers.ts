/**
 * Web chat events → the bot core, the way the Discord adapter does it: `/imagine` (prepare → attachImages → run),
 * a picture dropped on a message or the input box (img2img; a second picture is the inpaint mask; with `--control`
 * the newest picture is a ControlNet control image), a picture in the control-image slot (ControlNet; with a picture
 * on the box too, ControlNet img2img), buttons (followUp → run), `/sd-admin`. Input the core rejects is answered
 * privately to the sender.
 */
import type { Origin } from '../../queue/job.js';
import type { BotCore } from '../core/bot-core.js';
import { userMessageFor } from '../core/errors.js';
import type { FetchPolicy } from '../core/fetch-image.js';
import { helpText, isHelpRequest } from '../core/help.js';
import type { MessageSink } from '../core/throttled-sink.js';
import { imageSlots } from '../core/image-slots.js';
import type { ImagineInput, RemoteImage } from '../core/validate.js';
import { adminUsage, parseAdminText } from './admin-text.js';
import { newMessageId, type Channel } from './channel.js';
import type { ChatAuthor, ChatMessage, WireImage } from './wire.js';

/** The web chat is one server with one channel; admin defaults for "server" and "channel" both have a scope. */
export const WEB_GUILD = 'local';
export const WEB_CHANNEL = 'local';

export interface HandlerDeps {
  core: BotCore;
  channel: Channel;
  /** http://host:port of this server, which the core downloads uploaded pictures from (with its usual checks). */
  selfBase(): string;
  isAdmin(userId: string): boolean;
  maxUploadBytes: number;
}

export function fetchPolicyFor(selfBase: string): Omit<FetchPolicy, 'maxBytes' | 'maxPixels'> {
  const url = new URL(selfBase);
  return { allowedHosts: [url.host], allowHttp: url.protocol === 'http:' };
}

function originFor(user: ChatAuthor, replyTo?: string): Origin {
  return { platform: 'web', userId: user.id, userName: user.name, guildId: WEB_GUILD, channelId: WEB_CHANNEL, ...(replyTo ? { replyTo } : {}) };
}

/** A new bot message answering `replyTo`, edited in place as the job goes on. */
function replySink(channel: Channel, replyTo: string): MessageSink {
  const id = newMessageId();
  return async (m) => channel.upsert(channel.fromBot(id, m, replyTo));
}

function remote(image: WireImage, deps: HandlerDeps): RemoteImage {
  const file = deps.channel.files.get(image.url.slice(image.url.lastIndexOf('/') + 1));
  return { url: new URL(image.url, deps.selfBase()).toString(), filename: image.name, ...(file ? { size: file.bytes.byteLength, contentType: file.mime } : {}) };
}

function splitCommand(text: string): { command: string; rest: string } {
  const m = /^\s*(\/[\w-]+)\s*([\s\S]*)$/.exec(text);
  return m ? { command: (m[1] ?? '').toLowerCase(), rest: m[2] ?? '' } : { command: '', rest: text.trim() };
}

/** What a message carries: pictures in order (image, inpaint mask), and one for the control-image slot. */
interface SentPictures {
  images: WireImage[];
  control?: WireImage;
}

/** A message typed by `user`: shown to everyone, then acted on. */
export async function handleSend(user: ChatAuthor, text: string, sent: SentPictures, replyTo: string | undefined, deps: HandlerDeps): Promise<void> {
  const { channel } = deps;
  const images = sent.control ? [...sent.images, sent.control] : sent.images;
  const target = replyTo ? channel.get(replyTo) : undefined;
  const message: ChatMessage = {
    id: newMessageId(), author: user, kind: 'user', text, lines: [], images, buttons: [], final: true, ts: Date.now(),
    ...(target ? { replyTo: target.id } : {}),
  };
  channel.upsert(message);
  const { command, rest } = splitCommand(text);
  try {
    if (command === '/help' || (command === '/imagine' && isHelpRequest(rest))) {
      channel.whisper(user.id, helpText().split('\n'), message.id);
    } else if (command === '/sd-admin') {
      await admin(user, rest, message.id, deps);
    } else if (command === '/imagine' || (command === '' && (images.length > 0 || (target?.images.length ?? 0) > 0))) {
      await imagine(user, rest, slotsFor(rest, sent, target?.images ?? [], deps), message.id, deps);
    } else {
      channel.whisper(user.id, [command ? `I don't know \`${command}\`. Try \`/imagine a lighthouse at dusk --ar 16:9\` or \`/help\`.` : 'To make a picture, start with `/imagine`, e.g. `/imagine a lighthouse at dusk --ar 16:9`. Drop a picture on a message to remix it.'], message.id);
    }
  } catch (err) {
    report(err, user, message.id, deps);
  }
}

/**
 * The picture replied to (or dropped on) comes first; of the pictures sent, the next is the inpaint mask. A picture
 * in the control-image slot is the control image, and the message replied to is then only context: its picture is
 * not also the image to work on (ControlNet starts from noise).
 */
function slotsFor(text: string, sent: SentPictures, replied: WireImage[], deps: HandlerDeps): ImagineInput['images'] {
  const own = sent.images.map((p) => remote(p, deps));
  if (sent.control) return { ...imageSlots(own), control: remote(sent.control, deps) };
  return imageSlots([...replied.map((p) => remote(p, deps)), ...own], text);
}

async function imagine(user: ChatAuthor, text: string, images: ImagineInput['images'], replyTo: string, deps: HandlerDeps): Promise<void> {
  const startedAt = Date.now();
  const draft = deps.core.prepare({ text, images, origin: originFor(user, replyTo) });
  const request = await deps.core.attachImages(draft, fetchPolicyFor(deps.selfBase()));
  await deps.core.run(request, replySink(deps.channel, replyTo), { maxUploadBytes: deps.maxUploadBytes, startedAt, notes: draft.notes });
}

async function admin(user: ChatAuthor, text: string, replyTo: string, deps: HandlerDeps): Promise<void> {
  if (!deps.isAdmin(user.id)) {
    deps.core.options.logger.warn({ user: user.id, command: text }, 'admin command refused');
    deps.channel.whisper(user.id, ['Only the web chat admins (WEB_ADMIN_USER_IDS) can use `/sd-admin`.'], replyTo, 'error');
    return;
  }
  if (!text.trim() || isHelpRequest(text)) {
    deps.channel.whisper(user.id, adminUsage(), replyTo);
    return;
  }
  const lines = await deps.core.admin(parseAdminText(text), { platform: 'web', userId: user.id, guildId: WEB_GUILD, channelId: WEB_CHANNEL });
  deps.channel.whisper(user.id, lines, replyTo);
}

/** A button under a bot message: delete, or a follow-up job on that message's picture. */
export async function handleClick(user: ChatAuthor, messageId: string, buttonId: string, deps: HandlerDeps): Promise<void> {
  const { channel, core } = deps;
  const message = channel.get(messageId);
  try {
    // Only buttons that are really on the message: the page could send any id.
    const action = message?.buttons.flat().some((b) => b.id === buttonId) ? core.decodeAction(buttonId) : null;
    if (!message || !action) {
      channel.whisper(user.id, ["That button doesn't work any more: its message is gone."], undefined, 'error');
      return;
    }
    if (action.action === 'delete') {
      if (await core.mayDelete(action.jobId, user.id, deps.isAdmin(user.id))) channel.remove(message.id);
      else channel.whisper(user.id, ['Only the person who asked for this picture, or an admin, can delete it.'], message.id, 'error');
      return;
    }
    const origin = originFor(user, message.id);
    const startedAt = Date.now();
    const request = await core.followUp(action, origin, async () => message.images.map((img) => channel.files.get(img.url.slice(img.url.lastIndexOf('/') + 1))?.bytes).filter((b): b is Uint8Array => b !== undefined));
    await core.run(request, replySink(channel, message.id), { maxUploadBytes: deps.maxUploadBytes, startedAt });
  } catch (err) {
    report(err, user, messageId, deps);
  }
}

function report(err: unknown, user: ChatAuthor, replyTo: string, deps: HandlerDeps): void {
  if (!(err instanceof Error && (err.name === 'UserError' || err.name === 'BadRequestError'))) {
    deps.core.options.logger.error({ err: err instanceof Error ? err.stack : String(err), user: user.id }, 'web chat command failed');
  }
  deps.channel.whisper(user.id, [`⚠️ ${userMessageFor(err)}`], replyTo, 'error');
}
