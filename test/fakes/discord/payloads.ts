/**
 * INTERACTION_CREATE and MESSAGE_CREATE payloads as Discord sends them, for the fake gateway to dispatch.
 * https://discord.com/developers/docs/interactions/receiving-and-responding#interaction-object
 */
import { randomBytes } from 'node:crypto';
import type { FakeAttachment, FakeDiscord, FakeMessage } from './server.js';
import { snowflake } from './snowflake.js';

export const MANAGE_GUILD = 1n << 5n;
/** A plain member's permissions: view, send, read history, attach files; no Manage Server. */
export const MEMBER_PERMISSIONS = (1n << 10n) | (1n << 11n) | (1n << 16n) | (1n << 15n);

export interface FakeUser {
  id: string;
  username: string;
  /** Permission bits of the member in the guild. */
  permissions?: bigint;
}

export function fakeUser(username = 'alice', permissions = MEMBER_PERMISSIONS): FakeUser {
  return { id: snowflake(), username, permissions };
}

function apiUser(u: FakeUser): Record<string, unknown> {
  return { id: u.id, username: u.username, discriminator: '0', global_name: u.username, avatar: null, bot: false, flags: 0 };
}

export interface SentInteraction {
  id: string;
  token: string;
  payload: Record<string, unknown>;
}

function base(fake: FakeDiscord, type: number, user: FakeUser, data: Record<string, unknown>, extra: Record<string, unknown> = {}): SentInteraction {
  const id = snowflake();
  const token = `tok${randomBytes(24).toString('hex')}`;
  const payload = {
    id, application_id: fake.applicationId, type, token, version: 1, data,
    guild_id: fake.guildId, channel_id: fake.channelId,
    channel: { id: fake.channelId, type: 0, guild_id: fake.guildId, name: 'general', permissions: '1071698660929', flags: 0 },
    member: {
      user: apiUser(user), roles: [], joined_at: new Date().toISOString(), deaf: false, mute: false, flags: 0,
      permissions: String(user.permissions ?? MEMBER_PERMISSIONS), avatar: null, nick: null, premium_since: null, pending: false,
    },
    app_permissions: '1071698660929', locale: 'en-US', guild_locale: 'en-US', entitlements: [],
    authorizing_integration_owners: { '0': fake.guildId }, context: 0, attachment_size_limit: 10 * 1024 * 1024,
    ...extra,
  };
  return { id, token, payload };
}

export type OptionValue = string | number | boolean | FakeAttachment;

/** A `/name` chat-input command; attachment values go to data.resolved.attachments. */
export function chatInput(fake: FakeDiscord, user: FakeUser, name: string, options: Record<string, OptionValue>, subcommand?: string, extra: Record<string, unknown> = {}): SentInteraction {
  const attachments: Record<string, FakeAttachment> = {};
  const users: Record<string, unknown> = {};
  const opts = Object.entries(options).map(([n, v]) => {
    if (typeof v === 'object') {
      attachments[v.id] = v;
      return { name: n, type: 11, value: v.id };
    }
    if (n === 'user' && typeof v === 'string') {
      users[v] = apiUser({ id: v, username: `user${v.slice(-4)}` });
      return { name: n, type: 6, value: v };
    }
    return { name: n, type: typeof v === 'boolean' ? 5 : typeof v === 'number' ? (Number.isInteger(v) ? 4 : 10) : 3, value: v };
  });
  const resolved = { ...(Object.keys(attachments).length ? { attachments } : {}), ...(Object.keys(users).length ? { users } : {}) };
  const data = {
    id: snowflake(), name, type: 1, guild_id: fake.guildId,
    options: subcommand ? [{ name: subcommand, type: 1, options: opts }] : opts,
    ...(Object.keys(resolved).length ? { resolved } : {}),
  };
  return base(fake, 2, user, data, extra);
}

export function autocomplete(fake: FakeDiscord, user: FakeUser, name: string, focused: string, value: string): SentInteraction {
  return base(fake, 4, user, { id: snowflake(), name, type: 1, options: [{ name: focused, type: 3, value, focused: true }] });
}

/** A click on a button of `message`; @original of the click is that message. */
export function buttonClick(fake: FakeDiscord, user: FakeUser, message: FakeMessage, customId: string): SentInteraction {
  const sent = base(fake, 3, user, { custom_id: customId, component_type: 2 }, { message });
  fake.setOriginal(sent.token, message);
  return sent;
}

export function messageCommand(fake: FakeDiscord, user: FakeUser, name: string, target: FakeMessage): SentInteraction {
  return base(fake, 2, user, { id: snowflake(), name, type: 3, target_id: target.id, resolved: { messages: { [target.id]: target } } });
}

export function modalSubmit(fake: FakeDiscord, user: FakeUser, customId: string, fields: Record<string, string>): SentInteraction {
  const components = Object.entries(fields).map(([id, value]) => ({ type: 1, components: [{ type: 4, custom_id: id, value }] }));
  return base(fake, 5, user, { custom_id: customId, components });
}

/** Dispatches the interaction on the gateway. */
export function send(fake: FakeDiscord, i: SentInteraction): SentInteraction {
  fake.dispatch('INTERACTION_CREATE', i.payload);
  return i;
}

/** A user's message in the fake channel (MESSAGE_CREATE), optionally a reply mentioning the bot. */
export function userMessage(
  fake: FakeDiscord, user: FakeUser, content: string,
  opts: { attachments?: FakeAttachment[]; replyTo?: FakeMessage; mentionBot?: boolean } = {},
): FakeMessage {
  const body: Record<string, unknown> = {
    content: opts.mentionBot ? `<@${fake.applicationId}> ${content}` : content,
    ...(opts.replyTo ? { message_reference: { message_id: opts.replyTo.id, channel_id: fake.channelId, guild_id: fake.guildId } } : {}),
  };
  const msg = fake.storeMessage(fake.channelId, apiUser(user), { body, files: [] });
  msg.attachments = opts.attachments ?? [];
  msg.mentions = opts.mentionBot ? [fake.botUser] : [];
  msg.member = { roles: [], joined_at: new Date().toISOString(), deaf: false, mute: false, flags: 0 };
  if (opts.replyTo) {
    msg.type = 19;
    msg.referenced_message = opts.replyTo;
  }
  fake.dispatch('MESSAGE_CREATE', msg);
  return msg;
}
