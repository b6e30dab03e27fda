/**
 * The local web chat: one page on http://127.0.0.1:8080 that behaves like a chat channel, driven by the same bot
 * core as Discord and Slack. `sdbot start` runs it when no chat credentials are set.
 */
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

function parseEvent(raw: string): ClientEvent | null {
  try {
    const e = JSON.parse(raw) as Partial<ClientEvent> & Record<string, unknown>;
    if (e.type === 'hello' && typeof e.userId === 'string' && typeof e.name === 'string') return e as ClientEvent;
    if (e.type === 'send' && typeof e.text === 'string') return e as ClientEvent;
    if (e.type === 'click' && typeof e.messageId === 'string' && typeof e.buttonId === 'string') return e as ClientEvent;
  } catch {
    // not JSON: ignored like any other malformed event
  }
  return null;
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
        user = { id: event.userId.slice(0, 64), name: event.name.trim().slice(0, NAME_MAX) || 'guest', bot: false };
        listener.userId = user.id;
        channel.listeners.add(listener);
        listener.send({ type: 'welcome', you: user, history: channel.history(user.id) });
        return;
      }
      if (!user) return;
      if (event.type === 'send') {
        const images: WireImage[] = (event.files ?? []).filter((f) => typeof f === 'string' && channel.files.get(f)).slice(0, 2)
          .map((f) => ({ url: `/files/${f}`, name: channel.files.get(f)?.name ?? 'image' }));
        void handleSend(user, event.text.slice(0, 6000), images, event.replyTo, deps);
      } else {
        void handleClick(user, event.messageId, event.buttonId, deps);
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
