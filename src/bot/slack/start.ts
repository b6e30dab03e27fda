/**
 * The Slack bot: a Bolt app wired to the bot core. `startSlackBot` is what `sdbot start` / `sdbot bot` call when
 * SLACK_BOT_TOKEN is set.
 *
 * Two transports: HTTP (Bolt's receiver at /slack/events on SLACK_PORT, default 3000; every request's signature
 * checked against SLACK_SIGNING_SECRET over the raw body, and requests older than 5 minutes refused), or Socket
 * Mode when SLACK_APP_TOKEN is set (no public URL needed).
 *
 * Environment (see slackOptionsFromEnv): SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_APP_TOKEN, SLACK_PORT,
 * SLACK_API_URL (Web API base, default https://slack.com/api/), SLACK_ADMIN_USER_IDS (comma-separated admins
 * beside workspace admins and owners).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { App, HTTPReceiver, LogLevel, SocketModeReceiver, type Logger as BoltLogger, type Receiver } from '@slack/bolt';
import type { BotCore, Logger } from '../core/bot-core.js';
import { createBotCore, type CreateCoreOptions } from '../core/create-core.js';
import { AckFirstGate } from './ack-first.js';
import { registerButtons } from './buttons.js';
import { registerCommands } from './commands.js';
import type { SlackDeps } from './deps.js';
import { slackFetchPolicy } from './files.js';
import { registerMentions } from './mentions.js';

export const SLACK_EVENTS_PATH = '/slack/events';
export const DEFAULT_SLACK_PORT = 3000;

export interface SlackBotOptions {
  token: string;
  /** HTTP mode: verifies every request. Required unless `appToken` is given. */
  signingSecret?: string;
  /** Socket Mode when set (an `xapp-` app-level token with connections:write). */
  appToken?: string;
  /** HTTP mode port; 0 picks a free one (tests). */
  port?: number;
  /** Web API base URL (proxies, the tests' fake Slack). */
  apiUrl?: string;
  adminUserIds?: readonly string[];
  /** A core shared with other adapters; else one is created from `coreOptions`. */
  core?: BotCore;
  coreOptions?: CreateCoreOptions;
}

export interface SlackBot {
  app: App;
  core: BotCore;
  mode: 'http' | 'socket';
  /** The HTTP port listened on, and its server (null in Socket Mode). */
  port: number | null;
  server: Server | null;
  botUserId: string;
  stop(): Promise<void>;
}

export interface SlackEnv {
  token: string;
  signingSecret?: string;
  appToken?: string;
  port: number;
  apiUrl?: string;
  adminUserIds: string[];
}

/** null when SLACK_BOT_TOKEN is unset (the Slack adapter stays off). */
export function slackOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): SlackEnv | null {
  const token = env.SLACK_BOT_TOKEN?.trim();
  if (!token) return null;
  const port = env.SLACK_PORT?.trim() ? Number(env.SLACK_PORT) : DEFAULT_SLACK_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`SLACK_PORT must be a port number; got ${env.SLACK_PORT}`);
  const signingSecret = env.SLACK_SIGNING_SECRET?.trim();
  const appToken = env.SLACK_APP_TOKEN?.trim();
  if (!signingSecret && !appToken) throw new Error('SLACK_BOT_TOKEN is set but neither SLACK_SIGNING_SECRET (HTTP) nor SLACK_APP_TOKEN (Socket Mode) is');
  return {
    token, port,
    ...(signingSecret ? { signingSecret } : {}),
    ...(appToken ? { appToken } : {}),
    ...(env.SLACK_API_URL?.trim() ? { apiUrl: env.SLACK_API_URL.trim() } : {}),
    adminUserIds: (env.SLACK_ADMIN_USER_IDS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
  };
}

/** Bolt's logger interface over the core's (pino in production): Bolt's debug chatter is dropped. */
function boltLogger(log: Logger): BoltLogger {
  const text = (msg: unknown[]) => msg.map((m) => (m instanceof Error ? m.message : typeof m === 'string' ? m : JSON.stringify(m))).join(' ');
  let level = LogLevel.INFO;
  return {
    debug: () => undefined,
    info: (...msg: unknown[]) => log.info({ component: 'bolt' }, text(msg)),
    warn: (...msg: unknown[]) => log.warn({ component: 'bolt' }, text(msg)),
    error: (...msg: unknown[]) => log.error({ component: 'bolt' }, text(msg)),
    setLevel: (l: LogLevel) => void (level = l),
    getLevel: () => level,
    setName: () => undefined,
  };
}

/** The Web API client appends method names to the base URL, so it must end in a slash. */
function apiBase(apiUrl: string): string {
  return apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`;
}

export async function startSlackBot(opts: SlackBotOptions): Promise<SlackBot> {
  let ownCore: Awaited<ReturnType<typeof createBotCore>> | null = null;
  let core = opts.core;
  if (!core) {
    if (!opts.coreOptions) throw new Error('startSlackBot needs either core or coreOptions');
    ownCore = await createBotCore(opts.coreOptions);
    core = ownCore.core;
  }
  const log = core.options.logger;
  const logger = boltLogger(log);
  const clientOptions = opts.apiUrl ? { slackApiUrl: apiBase(opts.apiUrl) } : {};
  const mode = opts.appToken ? 'socket' : 'http';
  let receiver: Receiver;
  if (opts.appToken) {
    receiver = new SocketModeReceiver({ appToken: opts.appToken, logger, installerOptions: { clientOptions } });
  } else {
    if (!opts.signingSecret) throw new Error('the Slack HTTP receiver needs a signing secret (SLACK_SIGNING_SECRET)');
    // processBeforeResponse false: ack() answers the HTTP request at once, and the handler carries on after it.
    receiver = new HTTPReceiver({ signingSecret: opts.signingSecret, endpoints: SLACK_EVENTS_PATH, logger, processBeforeResponse: false });
  }
  // convoStore false: the bot keeps no conversation state in Bolt, whose default store answers every event with a
  // rejected lookup (an Error and its stack trace built per request, ahead of the ack).
  const app = new App({ token: opts.token, receiver, logger, clientOptions, convoStore: false });
  const deps: SlackDeps = {
    core,
    adminUserIds: new Set(opts.adminUserIds ?? []),
    fetchPolicy: slackFetchPolicy(opts.token, opts.apiUrl),
    afterAck: new AckFirstGate(),
  };
  registerCommands(app, deps);
  registerButtons(app, deps);
  registerMentions(app, deps);
  app.error(async (err) => log.error({ err: err.stack ?? String(err) }, 'slack listener error'));

  // Fails fast on a bad token, and names the bot in the log.
  const auth = await app.client.auth.test();
  let port: number | null = null;
  let server: Server | null = null;
  if (mode === 'http') {
    server = (await app.start(opts.port ?? DEFAULT_SLACK_PORT)) as Server;
    port = (server.address() as AddressInfo).port;
  } else {
    await app.start();
  }
  log.info({ mode, port, user: auth.user, team: auth.team }, 'slack bot ready');
  return {
    app, core, mode, port, server, botUserId: auth.user_id ?? '',
    stop: async () => {
      await app.stop();
      await ownCore?.close();
    },
  };
}
