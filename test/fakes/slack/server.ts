/**
 * A local fake Slack for tests: the Web API methods the bot calls (the client's slackApiUrl pointed here), the
 * file upload URLs and private file URLs (which need the bot token), response_url endpoints, and a Socket Mode
 * websocket. Toward the bot it plays Slack's side too: it signs and sends slash commands, interactive payloads and
 * events to the bot's HTTP endpoint, or sends them as Socket Mode envelopes.
 *
 * https://docs.slack.dev/authentication/verifying-requests-from-slack
 * https://docs.slack.dev/messaging/working-with-files#uploading_files
 * https://docs.slack.dev/apis/events-api/using-socket-mode
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { signedPost, type PostResult, type Tamper } from './signed-post.js';

export interface ApiCall {
  method: string;
  args: Record<string, unknown>;
  /** Bearer token the call was made with. */
  token: string | null;
  /** performance.now() on arrival. */
  at: number;
}

export interface FakeFile {
  id: string;
  name: string;
  title?: string;
  mimetype: string;
  size: number;
  url_private: string;
  url_private_download: string;
  original_w?: number;
  original_h?: number;
  /** Set once files.completeUploadExternal has been called for an upload. */
  completed: boolean;
  /** performance.now() from which image blocks may show it (Slack processes uploads for a moment). */
  readyAt?: number;
  data: Uint8Array;
}

export interface FakeSlackMessage {
  ts: string;
  channel: string;
  user: string;
  text: string;
  blocks: Record<string, unknown>[];
  thread_ts?: string;
  files?: Record<string, unknown>[];
  /** History of text/blocks this message had, oldest first (edits). */
  versions: { text: string; blocks: Record<string, unknown>[] }[];
}

export interface Responded {
  id: string;
  body: Record<string, unknown>;
  at: number;
}

export interface FakeSlackOptions {
  botToken?: string;
  appToken?: string;
  signingSecret?: string;
}

let counter = 0;
const nextId = (prefix: string) => `${prefix}${Date.now().toString(36).toUpperCase()}${(++counter).toString(36).toUpperCase().padStart(4, '0')}`;

export class FakeSlack extends EventEmitter {
  readonly botToken: string;
  readonly appToken: string;
  readonly signingSecret: string;
  readonly teamId = 'T0FAKE';
  readonly botUserId = 'U0BOT';
  readonly botId = 'B0BOT';
  readonly channelId = 'C0GENERAL';
  readonly calls: ApiCall[] = [];
  readonly messages = new Map<string, FakeSlackMessage>();
  readonly files = new Map<string, FakeFile>();
  readonly responses: Responded[] = [];
  /** users.info answers: id → flags. */
  readonly users = new Map<string, { name: string; is_admin?: boolean; is_owner?: boolean }>();
  /** Where the bot's HTTP receiver listens (set by the test). */
  botUrl = '';
  /** Delay before each Web API answer (a slow Slack). */
  apiDelayMs = 0;
  /** How long after completeUploadExternal image blocks still refuse a file (invalid_blocks), like Slack processing it. */
  fileReadyDelayMs = 0;
  private readonly sockets = new Set<WebSocket>();
  private readonly pendingAcks = new Map<string, (payload: unknown) => void>();
  private ts = Math.floor(Date.now() / 1000);

  private constructor(private readonly server: Server, private readonly wss: WebSocketServer, opts: FakeSlackOptions) {
    super();
    this.setMaxListeners(0);
    this.botToken = opts.botToken ?? 'xoxb-fake';
    this.appToken = opts.appToken ?? 'xapp-fake';
    this.signingSecret = opts.signingSecret ?? 'fake-signing-secret';
  }

  static async start(opts: FakeSlackOptions = {}): Promise<FakeSlack> {
    const server = createServer();
    const wss = new WebSocketServer({ noServer: true });
    const fake = new FakeSlack(server, wss, opts);
    server.on('request', (req, res) => void fake.onRequest(req, res));
    server.on('upgrade', (req, socket, head) => {
      if (!req.url?.startsWith('/socket')) return socket.destroy();
      wss.handleUpgrade(req, socket, head, (ws) => fake.onSocket(ws));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return fake;
  }

  get origin(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** What SLACK_API_URL is set to. */
  get apiUrl(): string {
    return `${this.origin}/api/`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private nextTs(): string {
    this.ts += 1;
    return `${this.ts}.${String(++counter).padStart(6, '0')}`;
  }

  // ---- files ------------------------------------------------------------------------------------------------------

  /** A file a user uploaded, as Slack describes it in events (url_private needs the bot token). */
  addFile(data: Uint8Array, name: string, mimetype: string, dims?: { width: number; height: number }): FakeFile {
    const id = nextId('F');
    const url = `${this.origin}/files-pri/${this.teamId}-${id}/${encodeURIComponent(name)}`;
    const file: FakeFile = {
      id, name, mimetype, size: data.byteLength, url_private: url, url_private_download: `${url}?download=1`, completed: true, data,
      ...(dims ? { original_w: dims.width, original_h: dims.height } : {}),
    };
    this.files.set(id, file);
    return file;
  }

  /** The file object as the API returns it (no bytes). */
  fileObject(f: FakeFile): Record<string, unknown> {
    const { data: _data, completed: _completed, ...rest } = f;
    return { ...rest, filetype: f.mimetype.split('/')[1] ?? 'binary', user: this.botUserId };
  }

  // ---- Web API ----------------------------------------------------------------------------------------------------

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.origin);
    const raw = await readBody(req);
    const at = performance.now();
    if (req.method === 'GET' && url.pathname.startsWith('/files-pri/')) return this.serveFile(req, url, res);
    if (url.pathname.startsWith('/upload/')) return this.receiveUpload(url.pathname.slice('/upload/'.length), raw, String(req.headers['content-type'] ?? ''), res);
    if (url.pathname.startsWith('/response/')) {
      const body = JSON.parse(raw.toString('utf8') || '{}') as Record<string, unknown>;
      const r = { id: url.pathname.slice('/response/'.length), body, at };
      this.responses.push(r);
      this.emit('response', r);
      return this.json(res, 200, { ok: true });
    }
    const m = /^\/api\/([\w.]+)$/.exec(url.pathname);
    if (!m) return this.json(res, 404, { ok: false, error: 'unknown_method' });
    const args = await parseArgs(raw, String(req.headers['content-type'] ?? ''));
    const auth = String(req.headers.authorization ?? '');
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : typeof args.token === 'string' ? args.token : null;
    const call: ApiCall = { method: m[1] ?? '', args, token, at };
    this.calls.push(call);
    this.emit('call', call);
    const expected = call.method === 'apps.connections.open' ? this.appToken : this.botToken;
    if (this.apiDelayMs > 0) await new Promise((r) => setTimeout(r, this.apiDelayMs));
    if (token !== expected) return this.json(res, 200, { ok: false, error: 'invalid_auth' });
    try {
      this.json(res, 200, this.route(call));
    } catch (err) {
      this.json(res, 200, { ok: false, error: err instanceof ApiError ? err.code : String(err) });
    }
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private serveFile(req: IncomingMessage, url: URL, res: ServerResponse): void {
    const id = /^\/files-pri\/[^-]+-(F\w+)\//.exec(url.pathname)?.[1] ?? '';
    const file = this.files.get(id);
    // Like Slack: without the token a private URL answers with the login page, not the file.
    if (req.headers.authorization !== `Bearer ${this.botToken}`) {
      res.writeHead(200, { 'content-type': 'text/html' });
      return void res.end('<html>sign in</html>');
    }
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': file.mimetype, 'content-length': file.data.byteLength });
    res.end(file.data);
  }

  private async receiveUpload(id: string, raw: Buffer, contentType: string, res: ServerResponse): Promise<void> {
    const file = this.files.get(id);
    if (!file) return void res.writeHead(404).end();
    let data = new Uint8Array(raw);
    if (contentType.startsWith('multipart/form-data')) {
      const form = await new Request('http://fake/', { method: 'POST', headers: { 'content-type': contentType }, body: raw }).formData();
      for (const value of form.values()) if (typeof value !== 'string') data = new Uint8Array(await value.arrayBuffer());
    }
    file.data = data;
    file.size = data.byteLength;
    this.emit('upload', file);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`OK - ${data.byteLength}`);
  }

  private route(c: ApiCall): Record<string, unknown> {
    const a = c.args;
    const str = (k: string) => (typeof a[k] === 'string' ? (a[k] as string) : a[k] === undefined ? undefined : String(a[k]));
    switch (c.method) {
      case 'auth.test':
        return { ok: true, url: 'https://fake.slack.com/', team: 'Fake Team', user: 'sdbot', team_id: this.teamId, user_id: this.botUserId, bot_id: this.botId, is_enterprise_install: false };
      case 'apps.connections.open':
        return { ok: true, url: `${this.origin.replace('http', 'ws')}/socket` };
      case 'chat.postMessage': {
        const channel = str('channel') ?? '';
        if (channel.startsWith('CNOTIN')) throw new ApiError('not_in_channel');
        this.checkImageBlocks(jsonArg(a.blocks) ?? []);
        const msg = this.storeMessage(channel, this.botUserId, str('text') ?? '', jsonArg(a.blocks) ?? [], str('thread_ts'));
        return { ok: true, channel, ts: msg.ts, message: { ...msg, versions: undefined } };
      }
      case 'chat.update': {
        const msg = this.messages.get(str('ts') ?? '');
        if (!msg) throw new ApiError('message_not_found');
        this.checkImageBlocks(jsonArg(a.blocks) ?? []);
        msg.text = str('text') ?? msg.text;
        msg.blocks = jsonArg(a.blocks) ?? msg.blocks;
        msg.versions.push({ text: msg.text, blocks: msg.blocks });
        return { ok: true, channel: msg.channel, ts: msg.ts, text: msg.text };
      }
      case 'chat.delete':
        if (!this.messages.delete(str('ts') ?? '')) throw new ApiError('message_not_found');
        return { ok: true, channel: str('channel'), ts: str('ts') };
      case 'chat.postEphemeral':
        return { ok: true, message_ts: this.nextTs() };
      case 'files.getUploadURLExternal': {
        const id = nextId('F');
        const name = str('filename') ?? 'file';
        const url = `${this.origin}/files-pri/${this.teamId}-${id}/${encodeURIComponent(name)}`;
        this.files.set(id, { id, name, mimetype: mimeOf(name), size: Number(str('length') ?? 0), url_private: url, url_private_download: `${url}?download=1`, completed: false, data: new Uint8Array() });
        return { ok: true, upload_url: `${this.origin}/upload/${id}`, file_id: id };
      }
      case 'files.completeUploadExternal': {
        const list = jsonArg(a.files) ?? [];
        const out = list.map((entry) => {
          const f = this.files.get(String(entry.id));
          if (!f || f.data.byteLength === 0) throw new ApiError('file_not_found');
          f.completed = true;
          f.readyAt = performance.now() + this.fileReadyDelayMs;
          if (entry.title) f.title = String(entry.title);
          return f;
        });
        const channel = str('channel_id');
        if (channel) this.storeMessage(channel, this.botUserId, str('initial_comment') ?? '', [], str('thread_ts'), out.map((f) => this.fileObject(f)));
        return { ok: true, files: out.map((f) => ({ id: f.id, title: f.title ?? f.name })) };
      }
      case 'files.info': {
        const f = this.files.get(str('file') ?? '');
        if (!f || !f.completed) throw new ApiError('file_not_found');
        return { ok: true, file: this.fileObject(f) };
      }
      case 'files.delete':
        if (!this.files.delete(str('file') ?? '')) throw new ApiError('file_not_found');
        return { ok: true };
      case 'users.info': {
        const id = str('user') ?? '';
        const u = this.users.get(id);
        if (!u) throw new ApiError('user_not_found');
        return { ok: true, user: { id, team_id: this.teamId, name: u.name, is_admin: u.is_admin ?? false, is_owner: u.is_owner ?? false, is_primary_owner: false, is_bot: false } };
      }
      case 'conversations.replies': {
        const ts = str('ts') ?? '';
        const thread = [...this.messages.values()].filter((m) => m.ts === ts || m.thread_ts === ts).sort((x, y) => Number(x.ts) - Number(y.ts));
        return { ok: true, messages: thread.map(({ versions: _v, ...m }) => m), has_more: false };
      }
      default:
        throw new ApiError('unknown_method');
    }
  }

  /** Slack refuses image blocks whose file it does not have, was never completed, or is still processing. */
  private checkImageBlocks(blocks: Record<string, unknown>[]): void {
    for (const b of blocks) {
      if (b.type !== 'image') continue;
      const f = this.files.get((b.slack_file as { id?: string } | undefined)?.id ?? '');
      if (!f || !f.completed || (f.readyAt ?? 0) > performance.now()) throw new ApiError('invalid_blocks');
    }
  }

  /** A message in a channel, as Slack stores it (also for messages "users" post in tests). */
  storeMessage(channel: string, user: string, text: string, blocks: Record<string, unknown>[], threadTs?: string, files?: Record<string, unknown>[]): FakeSlackMessage {
    const msg: FakeSlackMessage = { ts: this.nextTs(), channel, user, text, blocks, versions: [{ text, blocks }], ...(threadTs ? { thread_ts: threadTs } : {}), ...(files ? { files } : {}) };
    this.messages.set(msg.ts, msg);
    this.emit('message', msg);
    return msg;
  }

  // ---- toward the bot: HTTP ---------------------------------------------------------------------------------------

  /** POSTs a signed request to the bot; `tamper` forges the signature or ages the timestamp. */
  post(body: string, contentType: string, tamper: Tamper = {}): Promise<PostResult> {
    return signedPost(this.botUrl, body, contentType, this.signingSecret, tamper);
  }

  responseUrl(): string {
    return `${this.origin}/response/${randomBytes(8).toString('hex')}`;
  }

  /** Slash command form fields (https://docs.slack.dev/interactivity/implementing-slash-commands). */
  commandPayload(user: string, command: string, text: string, channel = this.channelId): Record<string, string> & { response_url: string } {
    return {
      token: 'deprecated-verification-token', team_id: this.teamId, team_domain: 'fake', channel_id: channel, channel_name: 'general',
      user_id: user, user_name: this.users.get(user)?.name ?? user.toLowerCase(), command, text, api_app_id: 'A0FAKE', is_enterprise_install: 'false',
      response_url: this.responseUrl(), trigger_id: randomBytes(8).toString('hex'),
    };
  }

  sendCommand(user: string, command: string, text: string, opts: { channel?: string; tamper?: Tamper } = {}) {
    const fields = this.commandPayload(user, command, text, opts.channel);
    return { fields, result: this.post(new URLSearchParams(fields).toString(), 'application/x-www-form-urlencoded', opts.tamper) };
  }

  /** A block_actions payload for a click on one of a message's buttons. */
  buttonPayload(user: string, message: FakeSlackMessage, actionId: string): Record<string, unknown> {
    const element = message.blocks.flatMap((b) => (b.type === 'actions' ? (b.elements as Record<string, unknown>[]) : [])).find((e) => e.action_id === actionId);
    if (!element) throw new Error(`no button ${actionId} on message ${message.ts}`);
    return {
      type: 'block_actions', user: { id: user, username: this.users.get(user)?.name ?? user, name: this.users.get(user)?.name ?? user, team_id: this.teamId },
      api_app_id: 'A0FAKE', token: 'deprecated', container: { type: 'message', message_ts: message.ts, channel_id: message.channel, is_ephemeral: false },
      trigger_id: randomBytes(8).toString('hex'), team: { id: this.teamId, domain: 'fake' }, enterprise: null, is_enterprise_install: false,
      channel: { id: message.channel, name: 'general' },
      message: { type: 'message', user: message.user, ts: message.ts, text: message.text, blocks: message.blocks, ...(message.thread_ts ? { thread_ts: message.thread_ts } : {}) },
      state: { values: {} }, response_url: this.responseUrl(),
      actions: [{ ...element, block_id: 'b1', type: 'button', action_ts: String(Date.now() / 1000) }],
    };
  }

  clickButton(user: string, message: FakeSlackMessage, actionId: string) {
    const payload = this.buttonPayload(user, message, actionId);
    return { payload, result: this.post(new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), 'application/x-www-form-urlencoded') };
  }

  /** An Events API callback for an app_mention (https://docs.slack.dev/reference/events/app_mention). */
  mentionPayload(user: string, text: string, opts: { threadTs?: string; files?: FakeFile[]; channel?: string } = {}): Record<string, unknown> {
    const channel = opts.channel ?? this.channelId;
    const msg = this.storeMessage(channel, user, text, [], opts.threadTs, opts.files?.map((f) => this.fileObject(f)));
    return {
      token: 'deprecated', team_id: this.teamId, api_app_id: 'A0FAKE', type: 'event_callback', event_id: nextId('Ev'), event_time: Math.floor(Date.now() / 1000),
      authorizations: [{ team_id: this.teamId, user_id: this.botUserId, is_bot: true, is_enterprise_install: false }],
      event: {
        type: 'app_mention', user, text, ts: msg.ts, channel, event_ts: msg.ts, team: this.teamId,
        ...(opts.threadTs ? { thread_ts: opts.threadTs } : {}), ...(msg.files ? { files: msg.files, upload: false } : {}),
      },
    };
  }

  sendMention(user: string, text: string, opts: { threadTs?: string; files?: FakeFile[] } = {}) {
    const payload = this.mentionPayload(user, text, opts);
    return { payload, result: this.post(JSON.stringify(payload), 'application/json') };
  }

  // ---- toward the bot: Socket Mode --------------------------------------------------------------------------------

  private onSocket(ws: WebSocket): void {
    this.sockets.add(ws);
    ws.on('close', () => this.sockets.delete(ws));
    ws.on('message', (raw) => {
      const msg = JSON.parse(String(raw)) as { envelope_id?: string; payload?: unknown };
      if (msg.envelope_id) this.pendingAcks.get(msg.envelope_id)?.(msg.payload);
    });
    ws.send(JSON.stringify({ type: 'hello', num_connections: 1, debug_info: { host: 'fake', approximate_connection_time: 3600 }, connection_info: { app_id: 'A0FAKE' } }));
    this.emit('socket', ws);
  }

  /** Resolves once a Socket Mode client is connected. */
  socketConnected(): Promise<void> {
    if (this.sockets.size > 0) return Promise.resolve();
    return new Promise((r) => this.once('socket', () => r()));
  }

  /** Sends an envelope; resolves with the ack's payload (what ack() carried) and how long the ack took. */
  sendEnvelope(type: 'slash_commands' | 'interactive' | 'events_api', payload: Record<string, unknown>): Promise<{ payload: unknown; ms: number }> {
    const envelopeId = randomBytes(8).toString('hex');
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no Socket Mode ack within 5 s')), 5000);
      this.pendingAcks.set(envelopeId, (p) => {
        clearTimeout(timer);
        this.pendingAcks.delete(envelopeId);
        resolve({ payload: p, ms: performance.now() - t0 });
      });
      const frame = JSON.stringify({ envelope_id: envelopeId, type, payload, accepts_response_payload: type !== 'events_api', retry_attempt: 0, retry_reason: '' });
      for (const ws of this.sockets) ws.send(frame);
    });
  }

  // ---- waiting ----------------------------------------------------------------------------------------------------

  /** The first recorded or future Web API call matching `pred`. */
  waitForCall(pred: (c: ApiCall) => boolean, timeoutMs = 15_000): Promise<ApiCall> {
    return this.waitFor('call', this.calls, pred, timeoutMs);
  }

  waitForResponse(pred: (r: Responded) => boolean, timeoutMs = 15_000): Promise<Responded> {
    return this.waitFor('response', this.responses, pred, timeoutMs);
  }

  private waitFor<T>(event: string, seen: readonly T[], pred: (x: T) => boolean, timeoutMs: number): Promise<T> {
    const found = seen.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off(event, on);
        reject(new Error(`timed out waiting for ${event}; calls so far:\n${this.calls.map((c) => `${c.method} ${JSON.stringify(c.args).slice(0, 160)}`).join('\n')}`));
      }, timeoutMs);
      const on = (x: T) => {
        if (!pred(x)) return;
        clearTimeout(timer);
        this.off(event, on);
        resolve(x);
      };
      this.on(event, on);
    });
  }

  /** Calls of one method, in order. */
  callsOf(method: string): ApiCall[] {
    return this.calls.filter((c) => c.method === method);
  }
}

class ApiError extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

function mimeOf(name: string): string {
  const ext = name.split('.').pop()?.toLowerCase();
  return ext === 'png' ? 'image/png' : ext === 'jpg' || ext === 'jpeg' ? 'image/jpeg' : ext === 'webp' ? 'image/webp' : ext === 'gif' ? 'image/gif' : 'application/octet-stream';
}

/** The Web API client sends objects as JSON strings inside form fields. */
function jsonArg(v: unknown): Record<string, unknown>[] | undefined {
  if (typeof v === 'string') return JSON.parse(v) as Record<string, unknown>[];
  if (Array.isArray(v)) return v as Record<string, unknown>[];
  return undefined;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function parseArgs(raw: Buffer, contentType: string): Promise<Record<string, unknown>> {
  if (raw.length === 0) return {};
  if (contentType.startsWith('application/json')) return JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
  if (contentType.startsWith('application/x-www-form-urlencoded')) return Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
  if (contentType.startsWith('multipart/form-data')) {
    const form = await new Request('http://fake/', { method: 'POST', headers: { 'content-type': contentType }, body: raw }).formData();
    const out: Record<string, unknown> = {};
    for (const [k, v] of form.entries()) out[k] = typeof v === 'string' ? v : new Uint8Array(await v.arrayBuffer());
    return out;
  }
  return {};
}
