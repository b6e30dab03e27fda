/**
 * The local web chat: one page on http://127.0.0.1:8080 that behaves like a chat channel, driven by the same bot
 * core as Discord and Slack. `sdbot start` runs it when no chat credentials are set.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { WebSocket } from 'ws';
import type { BotCore } from '../core/bot-core.js';
import { createBotCore, type CoreHandle, type CreateCoreOptions } from '../core/create-core.js';
import { Channel } from './channel.js';
import { FileStore } from './file-store.js';
import { handleClick, handleSend, type HandlerDeps } from './handlers.js';
import { buildHints } from './hints.js';
import { createChatServer } from './server.js';
import type { ChatAuthor, ClientEvent, ServerEvent, WireImage } from './wire.js';

export interface WebChatOptions {
  /** A core shared with other adapters; else one is created from `coreOptions`. */
  core?: BotCore;
  coreOptions?: CreateCoreOptions;
  /** Default 127.0.0.1: the chat has no login, so it is for this machine unless you put a proxy with auth in front. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Who may run /sd-admin. Default: everyone when bound to a loopback address, nobody otherwise. */
  adminUserIds?: readonly string[];
  /** Largest upload and largest result file, in bytes (default 20 MiB). */
  maxUploadBytes?: number;
  /** Memory for pictures (uploads, results, previews); the oldest go first (default 256 MiB). */
  maxStoredBytes?: number;
  /** A banner over the chat, e.g. that the model is the smoke-test one whose pictures are noise. */
  notice?: string;
}

export interface WebChat {
  url: string;
  port: number;
  core: BotCore;
  stop(): Promise<void>;
}

export interface WebEnv {
  host: string;
  port: number;
  adminUserIds?: string[];
}

export function webOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): WebEnv {
  const ids = env.WEB_ADMIN_USER_IDS?.split(',').map((s) => s.trim()).filter(Boolean);
  return { host: env.WEB_HOST?.trim() || '127.0.0.1', port: Number(env.WEB_PORT ?? 8080), ...(ids?.length ? { adminUserIds: ids } : {}) };
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const NAME_MAX = 40;

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** Events from the page, shape-checked: anything else is dropped (the page is not trusted). */
function parseEvent(raw: string): ClientEvent | null {
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (typeof e !== 'object' || e === null) return null;
  if (e.type === 'hello' && typeof e.userId === 'string' && typeof e.name === 'string' && typeof e.secret === 'string' && e.secret.length >= 16) {
    return { type: 'hello', userId: e.userId, name: e.name, secret: e.secret };
  }
  if (e.type === 'send' && typeof e.text === 'string' && (e.files === undefined || isStrings(e.files)) && (e.replyTo === undefined || typeof e.replyTo === 'string')
    && (e.control === undefined || typeof e.control === 'string')) {
    return { type: 'send', text: e.text, ...(e.files ? { files: e.files } : {}), ...(e.control ? { control: e.control } : {}), ...(e.replyTo ? { replyTo: e.replyTo } : {}) };
  }
  if (e.type === 'click' && typeof e.messageId === 'string' && typeof e.buttonId === 'string') return { type: 'click', messageId: e.messageId, buttonId: e.buttonId };
  return null;
}

/**
 * The chat has no accounts, but a user id must not be taken over by whoever reads it off a message: the first
 * page to claim an id binds it to a secret kept in that browser; later claims need the same secret.
 */
class IdentityBook {
  private readonly secrets = new Map<string, string>();

  claim(userId: string, secret: string): boolean {
    const digest = createHash('sha256').update(secret).digest();
    const known = this.secrets.get(userId);
    if (!known) {
      this.secrets.set(userId, digest.toString('hex'));
      return true;
    }
    return timingSafeEqual(Buffer.from(known, 'hex'), digest);
  }
}

export async function startWebChat(opts: WebChatOptions = {}): Promise<WebChat> {
  let own: CoreHandle | null = null;
  let core = opts.core;
  if (!core) {
    if (!opts.coreOptions) throw new Error('startWebChat needs either core or coreOptions');
    own = await createBotCore({ progressIntervalMs: 500, ...opts.coreOptions });
    core = own.core;
  }
  const host = opts.host ?? '127.0.0.1';
  const maxUploadBytes = opts.maxUploadBytes ?? 20 * 1024 * 1024;
  const channel = new Channel(new FileStore(opts.maxStoredBytes));
  const admins = opts.adminUserIds ? new Set(opts.adminUserIds) : null;
  let port = 0;
  const deps: HandlerDeps = {
    core,
    channel,
    selfBase: () => `http://${LOOPBACK.has(host) || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}`,
    isAdmin: (userId) => (admins ? admins.has(userId) : LOOPBACK.has(host)),
    maxUploadBytes,
  };
  const sockets = new Set<WebSocket>();
  const logFailure = (err: unknown) => deps.core.options.logger.error({ err: err instanceof Error ? err.stack : String(err) }, 'web chat event failed');
  const identities = new IdentityBook();
  const onSocket = (ws: WebSocket) => {
    sockets.add(ws);
    let user: ChatAuthor | null = null;
    const listener = {
      userId: null as string | null,
      send: (e: ServerEvent) => ws.readyState === ws.OPEN && ws.send(JSON.stringify(e)),
    };
    ws.on('message', (data) => {
      const event = parseEvent(data.toString());
      if (!event) return;
      if (event.type === 'hello') {
        const userId = event.userId.slice(0, 64);
        if (!identities.claim(userId, event.secret)) {
          ws.close(4001, 'that user id belongs to another browser');
          return;
        }
        user = { id: userId, name: event.name.trim().slice(0, NAME_MAX) || 'guest', bot: false };
        listener.userId = user.id;
        channel.listeners.add(listener);
        listener.send({ type: 'welcome', you: user, history: channel.history(user.id) });
        return;
      }
      if (!user) return;
      if (event.type === 'send') {
        const wire = (f: string): WireImage => ({ url: `/files/${f}`, name: channel.files.get(f)?.name ?? 'image' });
        const images = (event.files ?? []).filter((f) => channel.files.get(f)).slice(0, 2).map(wire);
        const control = event.control && channel.files.get(event.control) ? wire(event.control) : undefined;
        handleSend(user, event.text.slice(0, 6000), { images, ...(control ? { control } : {}) }, event.replyTo, deps).catch(logFailure);
      } else {
        handleClick(user, event.messageId, event.buttonId, deps).catch(logFailure);
      }
    });
    ws.on('close', () => {
      sockets.delete(ws);
      channel.listeners.delete(listener);
    });
  };
  const server = createChatServer({ channel, hints: () => buildHints(deps.core, opts.notice), maxUploadBytes, onSocket });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8080, host, () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
  core.options.logger.info({ url }, 'web chat listening');
  return {
    url,
    port,
    core,
    stop: async () => {
      for (const ws of sockets) ws.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await own?.close();
    },
  };
}
