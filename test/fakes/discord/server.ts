/**
 * A local fake Discord for tests: the REST API and the gateway websocket speaking Discord's real payloads, enough
 * for the unmodified discord.js client (rest.api pointed here) to log in, receive interactions and messages, and
 * answer, edit, follow up and upload files. It also serves uploaded files as the CDN would.
 *
 * https://discord.com/developers/docs/events/gateway (HELLO → IDENTIFY → READY → GUILD_CREATE, heartbeats)
 * https://discord.com/developers/docs/interactions/receiving-and-responding
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { snowflake } from './snowflake.js';

export interface UploadedFile {
  name: string;
  contentType: string;
  data: Uint8Array;
}

export interface RestCall {
  method: string;
  /** Path after /api/v10, e.g. /interactions/123/abc/callback. */
  path: string;
  query: URLSearchParams;
  /** JSON body, or payload_json of a multipart body. */
  body: Record<string, unknown> | null;
  files: UploadedFile[];
  /** performance.now() when the request arrived. */
  at: number;
}

export type FakeMessage = Record<string, unknown> & { id: string; channel_id: string; attachments: FakeAttachment[] };

export interface FakeAttachment {
  id: string;
  filename: string;
  size: number;
  url: string;
  proxy_url: string;
  content_type: string;
  width?: number;
  height?: number;
}

export interface FakeDiscordOptions {
  applicationId?: string;
  guildId?: string;
  channelId?: string;
  /** How long an interaction token works for webhook calls after its callback (Discord: 15 minutes). */
  interactionTokenTtlMs?: number;
}

const GATEWAY_PATH = '/gateway';

export class FakeDiscord extends EventEmitter {
  readonly applicationId: string;
  readonly guildId: string;
  readonly channelId: string;
  readonly botUser: Record<string, unknown>;
  readonly calls: RestCall[] = [];
  readonly messages = new Map<string, FakeMessage>();
  /** Registered commands: key 'global' or a guild id. */
  readonly commands = new Map<string, Record<string, unknown>[]>();
  /** Original response message per interaction token. */
  readonly originals = new Map<string, FakeMessage>();
  readonly identifies: Record<string, unknown>[] = [];
  /** Answers for REST routes a test wants to break: return a status to send instead of the real answer. */
  failRoute: ((call: RestCall) => number | null) | null = null;
  /** Interaction tokens by the time of their callback: webhook calls after the token's lifetime get Discord's 401. */
  private readonly tokenBorn = new Map<string, number>();
  private readonly expired = new Set<string>();
  private readonly tokenTtlMs: number;
  private readonly files = new Map<string, UploadedFile>();
  private readonly sockets = new Set<WebSocket>();
  private seq = 0;
  private readyResolve!: () => void;
  /** Resolves once a client has identified and been sent READY + GUILD_CREATE. */
  readonly ready = new Promise<void>((r) => (this.readyResolve = r));

  private constructor(private readonly server: Server, private readonly wss: WebSocketServer, opts: FakeDiscordOptions) {
    super();
    this.applicationId = opts.applicationId ?? snowflake();
    this.guildId = opts.guildId ?? snowflake();
    this.channelId = opts.channelId ?? snowflake();
    this.tokenTtlMs = opts.interactionTokenTtlMs ?? 15 * 60_000;
    this.botUser = { id: this.applicationId, username: 'sdbot', discriminator: '0', global_name: 'sdbot', avatar: null, bot: true, flags: 0 };
  }

  static async start(opts: FakeDiscordOptions = {}): Promise<FakeDiscord> {
    const server = createServer();
    const wss = new WebSocketServer({ noServer: true });
    const fake = new FakeDiscord(server, wss, opts);
    server.on('request', (req, res) => void fake.onRequest(req, res));
    server.on('upgrade', (req, socket, head) => {
      if (!req.url?.startsWith(GATEWAY_PATH)) return socket.destroy();
      wss.handleUpgrade(req, socket, head, (ws) => fake.onSocket(ws));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return fake;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** What DISCORD_API_URL is set to. */
  get apiUrl(): string {
    return `${this.origin}/api`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  // ---- gateway --------------------------------------------------------------------------------------------------

  private send(ws: WebSocket, payload: Record<string, unknown>): void {
    ws.send(JSON.stringify(payload));
  }

  /** A dispatch (op 0) to every connected client. */
  dispatch(t: string, d: unknown): void {
    this.seq++;
    const frame = JSON.stringify({ op: 0, t, s: this.seq, d });
    for (const ws of this.sockets) ws.send(frame);
  }

  private onSocket(ws: WebSocket): void {
    this.sockets.add(ws);
    ws.on('close', () => this.sockets.delete(ws));
    this.send(ws, { op: 10, s: null, t: null, d: { heartbeat_interval: 41250 } });
    ws.on('message', (raw) => {
      const msg = JSON.parse(String(raw)) as { op: number; d: Record<string, unknown> };
      if (msg.op === 1) this.send(ws, { op: 11, s: null, t: null, d: null });
      else if (msg.op === 2) this.onIdentify(ws, msg.d);
    });
  }

  private onIdentify(ws: WebSocket, d: Record<string, unknown>): void {
    this.identifies.push(d);
    this.seq++;
    this.send(ws, {
      op: 0, t: 'READY', s: this.seq,
      d: {
        v: 10, user: this.botUser, guilds: [{ id: this.guildId, unavailable: true }], session_id: snowflake(),
        resume_gateway_url: `ws://127.0.0.1:${this.port}${GATEWAY_PATH}`, shard: [0, 1],
        application: { id: this.applicationId, flags: 0 }, private_channels: [], relationships: [], user_settings: {},
      },
    });
    this.seq++;
    this.send(ws, { op: 0, t: 'GUILD_CREATE', s: this.seq, d: this.guildPayload() });
    this.readyResolve();
  }

  guildPayload(): Record<string, unknown> {
    const now = new Date().toISOString();
    return {
      id: this.guildId, name: 'Fake Guild', icon: null, splash: null, discovery_splash: null, owner_id: snowflake(),
      afk_channel_id: null, afk_timeout: 300, verification_level: 0, default_message_notifications: 0,
      explicit_content_filter: 0, mfa_level: 0, system_channel_id: null, system_channel_flags: 0, rules_channel_id: null,
      vanity_url_code: null, description: null, banner: null, premium_tier: 0, preferred_locale: 'en-US',
      public_updates_channel_id: null, nsfw_level: 0, premium_progress_bar_enabled: false, features: [],
      roles: [{ id: this.guildId, name: '@everyone', color: 0, hoist: false, icon: null, unicode_emoji: null, position: 0, permissions: '1071698660929', managed: false, mentionable: false, flags: 0 }],
      emojis: [], stickers: [], joined_at: now, large: false, unavailable: false, member_count: 1,
      voice_states: [], members: [{ user: this.botUser, roles: [], joined_at: now, deaf: false, mute: false, flags: 0 }],
      channels: [{ id: this.channelId, type: 0, guild_id: this.guildId, name: 'general', position: 0, permission_overwrites: [], nsfw: false, parent_id: null, topic: null, last_message_id: null, rate_limit_per_user: 0 }],
      threads: [], presences: [], stage_instances: [], guild_scheduled_events: [], soundboard_sounds: [],
    };
  }

  // ---- files (the CDN) -----------------------------------------------------------------------------------------

  /** Stores bytes as an attachment served by this fake's "CDN". */
  addAttachment(data: Uint8Array, filename: string, contentType: string, dims?: { width: number; height: number }): FakeAttachment {
    const id = snowflake();
    const path = `/attachments/${this.channelId}/${id}/${encodeURIComponent(filename)}`;
    this.files.set(path, { name: filename, contentType, data });
    const url = `${this.origin}${path}`;
    return { id, filename, size: data.byteLength, url, proxy_url: url, content_type: contentType, ...(dims ?? {}) };
  }

  /** The bytes behind an attachment URL this fake serves. */
  fileAt(url: string): UploadedFile | undefined {
    return this.files.get(new URL(url).pathname);
  }

  // ---- REST -----------------------------------------------------------------------------------------------------

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.origin);
    const at = performance.now();
    if (req.method === 'GET' && url.pathname.startsWith('/attachments/')) {
      const file = this.files.get(url.pathname);
      if (!file) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': file.contentType, 'content-length': file.data.byteLength });
      return void res.end(file.data);
    }
    const m = /^\/api\/v10(\/.*)$/.exec(url.pathname);
    if (!m) return this.json(res, 404, { message: '404: Not Found', code: 0 });
    const raw = await readBody(req);
    const { body, files } = await parseBody(raw, String(req.headers['content-type'] ?? ''));
    const call: RestCall = { method: req.method ?? 'GET', path: decodeURIComponent(m[1] ?? ''), query: url.searchParams, body, files, at };
    this.calls.push(call);
    this.emit('call', call);
    const failStatus = this.failRoute?.(call);
    if (failStatus) return this.json(res, failStatus, { message: 'fake failure', code: 0 });
    try {
      const [status, answer] = this.route(call);
      if (status === 204) return void res.writeHead(204).end();
      this.json(res, status, answer);
    } catch (err) {
      this.json(res, 500, { message: String(err), code: 0 });
    }
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private route(c: RestCall): [number, unknown] {
    const p = c.path;
    let m: RegExpExecArray | null;
    if (c.method === 'GET' && p === '/gateway/bot') {
      return [200, { url: `ws://127.0.0.1:${this.port}${GATEWAY_PATH}`, shards: 1, session_start_limit: { total: 1000, remaining: 999, reset_after: 0, max_concurrency: 1 } }];
    }
    if (c.method === 'GET' && p === '/gateway') return [200, { url: `ws://127.0.0.1:${this.port}${GATEWAY_PATH}` }];
    if (c.method === 'GET' && p === '/users/@me') return [200, this.botUser];
    if (c.method === 'GET' && p === '/applications/@me') return [200, { id: this.applicationId, name: 'sdbot', flags: 0, bot: this.botUser }];
    if ((m = /^\/interactions\/(\d+)\/([^/]+)\/callback$/.exec(p))) return this.callback(m[2] ?? '', c);
    if ((m = /^\/webhooks\/(\d+)\/([^/]+)/.exec(p)) && this.tokenExpired(m[2] ?? '')) {
      // What Discord answers for an interaction token past its 15 minutes.
      return [401, { message: 'Invalid Webhook Token', code: 50027 }];
    }
    if ((m = /^\/webhooks\/(\d+)\/([^/]+)\/messages\/(@original|\d+)$/.exec(p))) return this.webhookMessage(m[2] ?? '', m[3] ?? '', c);
    if ((m = /^\/webhooks\/(\d+)\/([^/]+)$/.exec(p)) && c.method === 'POST') {
      return [200, this.storeMessage(this.channelId, null, c)];
    }
    if ((m = /^\/channels\/(\d+)\/messages$/.exec(p)) && c.method === 'POST') return [200, this.storeMessage(m[1] ?? '', null, c)];
    if ((m = /^\/channels\/(\d+)\/messages\/(\d+)$/.exec(p))) return this.channelMessage(m[2] ?? '', c);
    if ((m = /^\/applications\/(\d+)(?:\/guilds\/(\d+))?\/commands$/.exec(p))) return this.commandsRoute(m[2] ?? 'global', c);
    return [404, { message: `404: fake Discord has no route ${c.method} ${p}`, code: 0 }];
  }

  /** Ends an interaction token's life now (as 15 minutes passing would). */
  expireToken(token: string): void {
    this.expired.add(token);
  }

  private tokenExpired(token: string): boolean {
    const born = this.tokenBorn.get(token);
    return this.expired.has(token) || (born !== undefined && Date.now() - born > this.tokenTtlMs);
  }

  private callback(token: string, c: RestCall): [number, unknown] {
    if (!this.tokenBorn.has(token)) this.tokenBorn.set(token, Date.now());
    const type = Number(c.body?.type);
    const data = (c.body?.data ?? {}) as Record<string, unknown>;
    // 4 reply, 5 deferred reply: create the original message; 6 deferred update, 7 update: the component's message.
    if (type === 4 || type === 5) {
      const msg = this.storeMessage(this.channelId, null, { ...c, body: { ...data, content: type === 5 ? '' : data.content } });
      this.originals.set(token, msg);
    } else if (type === 7) {
      const existing = this.originals.get(token);
      if (existing) this.applyEdit(existing, { ...c, body: data });
    }
    return c.query.get('with_response') === 'true' ? [200, { interaction: { id: snowflake(), type } }] : [204, null];
  }

  /** Sets which message an interaction's @original is (a button's message). */
  setOriginal(token: string, message: FakeMessage): void {
    this.originals.set(token, message);
  }

  private webhookMessage(token: string, which: string, c: RestCall): [number, unknown] {
    const msg = which === '@original' ? this.originals.get(token) : this.messages.get(which);
    if (!msg) return [404, { message: 'Unknown Message', code: 10008 }];
    if (c.method === 'DELETE') {
      this.messages.delete(msg.id);
      if (which === '@original') this.originals.delete(token);
      return [204, null];
    }
    if (c.method === 'PATCH') this.applyEdit(msg, c);
    return [200, msg];
  }

  private channelMessage(id: string, c: RestCall): [number, unknown] {
    const msg = this.messages.get(id);
    if (!msg) return [404, { message: 'Unknown Message', code: 10008 }];
    if (c.method === 'DELETE') {
      this.messages.delete(id);
      return [204, null];
    }
    if (c.method === 'PATCH') this.applyEdit(msg, c);
    return [200, msg];
  }

  private commandsRoute(scope: string, c: RestCall): [number, unknown] {
    if (c.method === 'PUT') {
      const list = (Array.isArray(c.body) ? c.body : []) as Record<string, unknown>[];
      const stored = list.map((cmd) => ({ id: snowflake(), application_id: this.applicationId, version: snowflake(), default_member_permissions: null, nsfw: false, ...cmd }));
      this.commands.set(scope, stored);
      return [200, stored];
    }
    return [200, this.commands.get(scope) ?? []];
  }

  /** A message as Discord returns it; its files become CDN attachments. */
  storeMessage(channelId: string, author: Record<string, unknown> | null, c: Pick<RestCall, 'body' | 'files'>): FakeMessage {
    const body = c.body ?? {};
    const msg: FakeMessage = {
      id: snowflake(), channel_id: channelId, guild_id: this.guildId, author: author ?? this.botUser, content: String(body.content ?? ''),
      timestamp: new Date().toISOString(), edited_timestamp: null, tts: false, mention_everyone: false, mentions: [], mention_roles: [],
      attachments: [], embeds: [], pinned: false, type: 0, flags: Number(body.flags ?? 0), components: body.components ?? [],
    };
    if (body.message_reference) msg.message_reference = body.message_reference;
    msg.attachments = this.attachmentsFor(c.files, body, []);
    this.messages.set(msg.id, msg);
    return msg;
  }

  private applyEdit(msg: FakeMessage, c: Pick<RestCall, 'body' | 'files'>): void {
    const body = c.body ?? {};
    if ('content' in body) msg.content = String(body.content ?? '');
    if ('components' in body) msg.components = body.components;
    if ('attachments' in body || c.files.length) msg.attachments = this.attachmentsFor(c.files, body, msg.attachments);
    msg.edited_timestamp = new Date().toISOString();
  }

  /** Kept attachments (listed by id in `attachments`) plus the uploaded files. */
  private attachmentsFor(files: UploadedFile[], body: Record<string, unknown>, existing: FakeAttachment[]): FakeAttachment[] {
    const listed = Array.isArray(body.attachments) ? (body.attachments as { id: string | number }[]) : null;
    const kept = listed ? existing.filter((a) => listed.some((l) => String(l.id) === a.id)) : existing;
    return [...kept, ...files.map((f) => this.addAttachment(f.data, f.name, f.contentType))];
  }

  // ---- waiting --------------------------------------------------------------------------------------------------

  /** The first recorded or future call matching `pred`. */
  waitForCall(pred: (c: RestCall) => boolean, timeoutMs = 15_000, after = 0): Promise<RestCall> {
    const found = this.calls.slice(after).find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('call', onCall);
        reject(new Error(`timed out waiting for a REST call; calls so far:\n${this.calls.map((x) => `${x.method} ${x.path}`).join('\n')}`));
      }, timeoutMs);
      const onCall = (c: RestCall) => {
        if (!pred(c)) return;
        clearTimeout(timer);
        this.off('call', onCall);
        resolve(c);
      };
      this.on('call', onCall);
    });
  }

  /** Every call made with an interaction's token (callback, edits, follow-ups). */
  callsFor(token: string): RestCall[] {
    return this.calls.filter((c) => c.path.includes(`/${token}`));
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function parseBody(raw: Buffer, contentType: string): Promise<{ body: Record<string, unknown> | null; files: UploadedFile[] }> {
  if (raw.length === 0) return { body: null, files: [] };
  if (contentType.startsWith('application/json')) return { body: JSON.parse(raw.toString('utf8')) as Record<string, unknown>, files: [] };
  if (contentType.startsWith('multipart/form-data')) {
    const form = await new Request('http://fake/', { method: 'POST', headers: { 'content-type': contentType }, body: raw }).formData();
    const files: UploadedFile[] = [];
    let body: Record<string, unknown> | null = null;
    for (const [key, value] of form.entries()) {
      if (key === 'payload_json' && typeof value === 'string') body = JSON.parse(value) as Record<string, unknown>;
      else if (typeof value !== 'string') files.push({ name: value.name, contentType: value.type, data: new Uint8Array(await value.arrayBuffer()) });
    }
    return { body, files };
  }
  return { body: null, files: [] };
}
