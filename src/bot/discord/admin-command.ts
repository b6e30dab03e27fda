/** `/sd-admin` options → the core's AdminCommand; who may run it. */
import { PermissionFlagsBits, type ChatInputCommandInteraction, type BaseInteraction } from 'discord.js';
import type { AdminCommand } from '../core/admin.js';

/** Members with Manage Server, or users listed in DISCORD_ADMIN_USER_IDS. */
export function isDiscordAdmin(i: BaseInteraction, adminUserIds: ReadonlySet<string>): boolean {
  return adminUserIds.has(i.user.id) || (i.memberPermissions?.has(PermissionFlagsBits.ManageGuild) ?? false);
}

export function parseAdminCommand(i: ChatInputCommandInteraction): AdminCommand {
  const o = i.options;
  const worker = o.getString('worker') ?? undefined;
  const w = worker ? { worker } : {};
  const name = o.getSubcommand(true);
  switch (name) {
    case 'models':
    case 'queue':
      return { name };
    case 'load':
    case 'unload':
      return { name, model: o.getString('model', true), ...w };
    case 'pause':
    case 'resume':
      return { name, ...w };
    case 'default': {
      const scope = o.getString('scope', true) === 'channel' ? 'channel' : 'server';
      const model = o.getString('model');
      const sampler = o.getString('sampler');
      const steps = o.getInteger('steps');
      const count = o.getInteger('count');
      return {
        name, scope,
        ...(model !== null ? { model } : {}), ...(sampler !== null ? { sampler } : {}),
        ...(steps !== null ? { steps } : {}), ...(count !== null ? { count } : {}),
        ...(o.getBoolean('clear') ? { clear: true } : {}),
      };
    }
    case 'cancel':
      return { name, jobId: o.getString('job', true) };
    case 'limits': {
      const n = o.getInteger('per_user');
      return { name, ...(n !== null ? { maxJobsPerUser: n } : {}) };
    }
    case 'ban':
    case 'unban':
      return { name, userId: o.getUser('user', true).id };
    default:
      throw new Error(`unknown /sd-admin subcommand ${name}`);
  }
}
