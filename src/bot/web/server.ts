/**
 * The web chat's HTTP side (node:http): the page and its script (plain files in public/, no build step), the file
 * store at /files/ID, uploads, completion hints and the websocket at /ws.
 *
 * The chat is meant for the machine it runs on. A page on another site could still reach 127.0.0.1 from the user's
 * browser, so uploads and the websocket refuse requests whose Origin header names another host (cross-site
 * websocket hijacking); plain GETs are harmless to allow.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Channel } from './channel.js';
import type { Hints } from './hints.js';

export const PUBLIC_DIR = join(fileURLToPath(new URL('.', import.meta.url)), 'public');

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

export interface ServerDeps {
  channel: Channel;
  hints(): Hints;
  maxUploadBytes: number;
  onSocket(socket: WebSocket): void;
}

export function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (!origin) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

function send(res: ServerResponse, status: number, type: string, body: string | Uint8Array, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'x-content-type-options': 'nosniff', ...extra });
  res.end(body);
}

async function readBody(req: IncomingMessage, max: number): Promise<Uint8Array | null> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > max) return null;
    chunks.push(chunk as Buffer);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

async function route(req: IncomingMessage, res: ServerResponse, deps: ServerDeps): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://local');
  const page = STATIC[url.pathname];
  if (req.method === 'GET' && page) {
    send(res, 200, page.type, await readFile(join(PUBLIC_DIR, page.file)), { 'cache-control': 'no-cache' });
    return;
  }
  if (req.method === 'GET' && url.pathname.startsWith('/files/')) {
    const file = deps.channel.files.get(url.pathname.slice('/files/'.length));
    if (!file) return send(res, 404, 'text/plain', 'gone');
    send(res, 200, file.mime, file.bytes, { 'cache-control': 'private, max-age=86400, immutable' });
    return;
  }
  if (req.method === 'GET' && url.pathname === '/api/hints') return send(res, 200, 'application/json', JSON.stringify(deps.hints()));
  if (req.method === 'GET' && url.pathname === '/healthz') return send(res, 200, 'text/plain', 'ok');
  if (req.method === 'POST' && url.pathname === '/upload') {
    if (!sameOrigin(req)) return send(res, 403, 'text/plain', 'cross-origin upload refused');
    const mime = String(req.headers['content-type'] ?? 'application/octet-stream').split(';')[0] ?? '';
    const name = (url.searchParams.get('name') ?? 'upload').slice(0, 200);
    const bytes = await readBody(req, deps.maxUploadBytes);
    if (!bytes) return send(res, 413, 'application/json', JSON.stringify({ error: `The file is larger than ${(deps.maxUploadBytes / 1024 / 1024).toFixed(0)} MiB.` }), { connection: 'close' });
    const id = deps.channel.files.put({ bytes, mime, name });
    return send(res, 200, 'application/json', JSON.stringify({ url: `/files/${id}`, name }));
  }
  send(res, 404, 'text/plain', 'not found');
}

export function createChatServer(deps: ServerDeps): Server {
  const server = createServer((req, res) => {
    route(req, res, deps).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, 'text/plain', String(err));
      else res.destroy();
    });
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: 256 * 1024 });
  server.on('upgrade', (req, socket, head) => {
    if (new URL(req.url ?? '/', 'http://local').pathname !== '/ws' || !sameOrigin(req)) {
      socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => deps.onSocket(ws));
  });
  server.on('close', () => wss.close());
  return server;
}
