/**
 * Discord application commands generated from the core's options table: `/imagine`, `/sd-admin` and the
 * "Remix" message command. https://discord.com/developers/docs/interactions/application-commands
 */
import { ApplicationCommandOptionType, ApplicationCommandType, PermissionFlagsBits } from 'discord.js';
import type { RESTPostAPIApplicationCommandsJSONBody, APIApplicationCommandOption } from 'discord.js';
import { SAMPLERS } from '../../queue/job.js';
import { OPTIONS, type OptionSpec } from '../core/options.js';

export const IMAGINE = 'imagine';
export const ADMIN = 'sd-admin';
export const REMIX = 'Remix';

/** Discord: at most 25 choices per option. */
const MAX_CHOICES = 25;

function imagineOption(o: OptionSpec): APIApplicationCommandOption {
  const base = { name: o.name, description: o.help.slice(0, 100), required: o.required ?? false };
  switch (o.type) {
    case 'integer':
      return { ...base, type: ApplicationCommandOptionType.Integer, ...(o.min !== undefined ? { min_value: o.min } : {}), ...(o.max !== undefined ? { max_value: o.max } : {}) };
    case 'number':
      return { ...base, type: ApplicationCommandOptionType.Number, ...(o.min !== undefined ? { min_value: o.min } : {}), ...(o.max !== undefined ? { max_value: o.max } : {}) };
    case 'attachment':
      return { ...base, type: ApplicationCommandOptionType.Attachment };
    case 'choice':
      return { ...base, type: ApplicationCommandOptionType.String, choices: (o.choices ?? []).slice(0, MAX_CHOICES).map((c) => ({ name: c, value: c })) };
    case 'text':
      return { ...base, type: ApplicationCommandOptionType.String, max_length: o.name === 'prompt' ? 4000 : 2000 };
    default:
      return { ...base, type: ApplicationCommandOptionType.String, ...(o.autocomplete ? { autocomplete: true } : {}) };
  }
}

const sub = (name: string, description: string, options: APIApplicationCommandOption[] = []): APIApplicationCommandOption => ({
  type: ApplicationCommandOptionType.Subcommand, name, description, ...(options.length ? { options } : {}),
} as APIApplicationCommandOption);
const str = (name: string, description: string, extra: Record<string, unknown> = {}) =>
  ({ type: ApplicationCommandOptionType.String, name, description, ...extra }) as APIApplicationCommandOption;

function adminCommand(): RESTPostAPIApplicationCommandsJSONBody {
  const model = str('model', 'Model id', { required: true, autocomplete: true });
  const worker = str('worker', 'Only this worker (all when left out)');
  return {
    type: ApplicationCommandType.ChatInput,
    name: ADMIN,
    description: 'Manage the Stable Diffusion bot',
    // Shown only to members with Manage Server; the bot checks again (and admits DISCORD_ADMIN_USER_IDS).
    default_member_permissions: String(PermissionFlagsBits.ManageGuild),
    contexts: [0],
    options: [
      sub('models', 'Known models and which workers hold them'),
      sub('load', 'Load a model on the workers', [model, worker]),
      sub('unload', 'Unload a model from the workers', [model, worker]),
      sub('default', 'Set defaults for this server or channel', [
        str('scope', 'Where the defaults apply', { required: true, choices: [{ name: 'server', value: 'server' }, { name: 'channel', value: 'channel' }] }),
        str('model', 'Default model', { autocomplete: true }),
        str('sampler', 'Default sampler', { choices: SAMPLERS.map((s) => ({ name: s, value: s })) }),
        { type: ApplicationCommandOptionType.Integer, name: 'steps', description: 'Default steps', min_value: 1, max_value: 150 },
        { type: ApplicationCommandOptionType.Integer, name: 'count', description: 'Default image count', min_value: 1, max_value: 4 },
        { type: ApplicationCommandOptionType.Boolean, name: 'clear', description: 'Remove the defaults of this scope' },
      ]),
      sub('queue', 'Queue depth, running jobs and workers'),
      sub('pause', 'Stop workers taking new jobs', [worker]),
      sub('resume', 'Let workers take jobs again', [worker]),
      sub('cancel', 'Cancel a job', [str('job', 'Job id', { required: true })]),
      sub('limits', 'Show or set the per-user job limit', [{ type: ApplicationCommandOptionType.Integer, name: 'per_user', description: 'Jobs one user may have queued or running', min_value: 1, max_value: 50 }]),
      sub('ban', 'Stop a user from making pictures', [{ type: ApplicationCommandOptionType.User, name: 'user', description: 'Who', required: true }]),
      sub('unban', 'Let a user make pictures again', [{ type: ApplicationCommandOptionType.User, name: 'user', description: 'Who', required: true }]),
    ],
  };
}

export function discordCommands(): RESTPostAPIApplicationCommandsJSONBody[] {
  return [
    {
      type: ApplicationCommandType.ChatInput,
      name: IMAGINE,
      description: 'Make pictures with Stable Diffusion',
      options: OPTIONS.filter((o) => o.slash !== false).map(imagineOption),
    },
    adminCommand(),
    { type: ApplicationCommandType.Message, name: REMIX },
  ];
}
