/**
 * Registers the generated commands only when they differ from what Discord has: Discord allows 200 command
 * creates per day per guild, and a bot that re-registers on every start burns through them.
 * https://discord.com/developers/docs/interactions/application-commands#bulk-overwrite-global-application-commands
 */
import { REST, Routes, type RESTPostAPIApplicationCommandsJSONBody } from 'discord.js';
import { discordCommands } from './command-json.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Fields Discord adds or defaults (ids, versions, false flags) are dropped, so equal commands compare equal. */
function canonical(value: unknown): Json {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    const out: Record<string, Json> = {};
    for (const [k, v] of Object.entries(value).sort(([a], [b]) => a.localeCompare(b))) {
      if (['id', 'application_id', 'version', 'guild_id', 'dm_permission', 'nsfw', 'integration_types', 'name_localizations', 'description_localizations', 'handler'].includes(k)) continue;
      if (v === undefined || v === null || v === false || (k === 'description' && v === '')) continue;
      if (k === 'contexts' && Array.isArray(v) && v.length === 0) continue;
      out[k] = canonical(v);
    }
    return out;
  }
  return value as Json;
}

export function sameCommands(a: readonly unknown[], b: readonly unknown[]): boolean {
  const key = (list: readonly unknown[]) => JSON.stringify(canonical([...list].sort((x, y) => String((x as { name?: string }).name).localeCompare(String((y as { name?: string }).name)))));
  return key(a) === key(b);
}

export interface RegisterOptions {
  token: string;
  applicationId: string;
  guildId?: string;
  apiUrl?: string;
  commands?: RESTPostAPIApplicationCommandsJSONBody[];
}

export async function registerDiscordCommands(opts: RegisterOptions): Promise<'registered' | 'unchanged'> {
  const rest = new REST(opts.apiUrl ? { api: opts.apiUrl } : {}).setToken(opts.token);
  const route = opts.guildId ? Routes.applicationGuildCommands(opts.applicationId, opts.guildId) : Routes.applicationCommands(opts.applicationId);
  const wanted = opts.commands ?? discordCommands();
  const current = (await rest.get(route)) as unknown[];
  if (sameCommands(current, wanted)) return 'unchanged';
  await rest.put(route, { body: wanted });
  return 'registered';
}
