/**
 * The Discord bot: a discord.js gateway client wired to the bot core. `startDiscordBot` is what `sdbot start` /
 * `sdbot bot` call when DISCORD_TOKEN is set.
 *
 * Environment (see discordOptionsFromEnv): DISCORD_TOKEN, DISCORD_APPLICATION_ID, DISCORD_API_URL (REST base,
 * default https://discord.com/api; the gateway URL is discovered through it), DISCORD_ADMIN_USER_IDS
 * (comma-separated admins beside members with Manage Server).
 */
import { Client, Events, GatewayIntentBits, Partials } from 'discord.js';
import type { BotCore } from '../core/bot-core.js';
import { createBotCore, type CreateCoreOptions } from '../core/create-core.js';
import { fetchPolicyFor } from './attachments.js';
import { handleInteraction } from './interactions.js';
import { handleMessage } from './reply-with-image.js';

export interface DiscordBotOptions {
  token: string;
  applicationId?: string;
  /** REST base URL (REST proxies, the tests' fake Discord). */
  apiUrl?: string;
  adminUserIds?: readonly string[];
  /** A core shared with other adapters; else one is created from `coreOptions`. */
  core?: BotCore;
  coreOptions?: CreateCoreOptions;
  /** Milliseconds to wait for the gateway READY. */
  readyTimeoutMs?: number;
}

export interface DiscordBot {
  client: Client<true>;
  core: BotCore;
  stop(): Promise<void>;
}

export interface DiscordEnv {
  token: string;
  applicationId?: string;
  apiUrl?: string;
  adminUserIds: string[];
}

/** null when DISCORD_TOKEN is unset (the Discord adapter stays off). */
export function discordOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): DiscordEnv | null {
  const token = env.DISCORD_TOKEN?.trim();
  if (!token) return null;
  return {
    token,
    ...(env.DISCORD_APPLICATION_ID ? { applicationId: env.DISCORD_APPLICATION_ID.trim() } : {}),
    ...(env.DISCORD_API_URL ? { apiUrl: env.DISCORD_API_URL.trim() } : {}),
    adminUserIds: (env.DISCORD_ADMIN_USER_IDS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
  };
}

export async function startDiscordBot(opts: DiscordBotOptions): Promise<DiscordBot> {
  let ownCore: Awaited<ReturnType<typeof createBotCore>> | null = null;
  let core = opts.core;
  if (!core) {
    if (!opts.coreOptions) throw new Error('startDiscordBot needs either core or coreOptions');
    ownCore = await createBotCore(opts.coreOptions);
    core = ownCore.core;
  }
  const client = new Client({
    // Message Content (privileged) is needed to read the prompt of a reply-with-image.
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent, GatewayIntentBits.DirectMessages],
    partials: [Partials.Channel],
    ...(opts.apiUrl ? { rest: { api: opts.apiUrl } } : {}),
  });
  const deps = {
    core,
    client,
    adminUserIds: new Set(opts.adminUserIds ?? []),
    fetchPolicy: fetchPolicyFor(opts.apiUrl),
  };
  const log = core.options.logger;
  // Handlers run synchronously up to their first await, which is the deferral: nothing queues ahead of it.
  client.on(Events.InteractionCreate, (i) => void handleInteraction(i, deps));
  client.on(Events.MessageCreate, (m) => void handleMessage(m, deps));
  client.on(Events.Error, (err) => log.error({ err: err.message }, 'discord client error'));

  const ready = new Promise<Client<true>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('Discord gateway did not become ready in time')), opts.readyTimeoutMs ?? 60_000);
    client.once(Events.ClientReady, (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  await client.login(opts.token);
  const readyClient = await ready;
  if (opts.applicationId && readyClient.application.id !== opts.applicationId) {
    log.warn({ expected: opts.applicationId, actual: readyClient.application.id }, 'DISCORD_APPLICATION_ID does not match the token');
  }
  log.info({ user: readyClient.user.tag }, 'discord bot ready');
  return {
    client: readyClient,
    core,
    stop: async () => {
      await client.destroy();
      await ownCore?.close();
    },
  };
}
