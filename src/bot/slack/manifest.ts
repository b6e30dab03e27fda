/**
 * The Slack app manifest (https://docs.slack.dev/reference/app-manifest), generated from the core's options table
 * so the command's usage hint never drifts from what the parser accepts. Paste it at api.slack.com/apps →
 * "Create New App" → "From an app manifest", after replacing the request URL with the bot's public address; for
 * Socket Mode set `settings.socket_mode_enabled` to true instead (the URLs are then unused).
 */
import { OPTIONS, type OptionSpec } from '../core/options.js';
import { ADMIN, IMAGINE } from './commands.js';
import { SLACK_EVENTS_PATH } from './start.js';

export const PLACEHOLDER_HOST = 'https://sdbot.example.com';

/** Slack's limits on manifest fields. */
const USAGE_HINT_MAX = 1000;

function placeholder(o: OptionSpec): string {
  switch (o.type) {
    case 'integer':
    case 'number':
    case 'seed':
      return 'N';
    case 'size':
      return 'WxH';
    case 'aspect':
      return 'W:H';
    case 'crop':
      return 'TOP,LEFT';
    case 'choice':
      return o.name;
    case 'model':
      return o.valueOptional ? '[model]' : 'model';
    default:
      return 'text';
  }
}

/** `prompt [--no text] [--model model] …`: every flag the parser takes, in table order. */
export function imagineUsageHint(): string {
  const parts = ['prompt'];
  for (const o of OPTIONS) {
    const flag = o.flags[0];
    if (!flag) continue;
    const next = `[${flag} ${placeholder(o)}]`;
    if ([...parts, next].join(' ').length > USAGE_HINT_MAX) break;
    parts.push(next);
  }
  return parts.join(' ');
}

/** Bot scopes, each for something the adapter calls. */
export const SLACK_BOT_SCOPES = [
  'commands', // /imagine, /sd-admin
  'chat:write', // progress and result messages, ephemeral errors
  'files:write', // files.uploadV2 of previews and results, deleting them
  'files:read', // files.info and private URLs of pictures to remix
  'app_mentions:read', // remix by mention
  'channels:history', // the first message of a thread in public channels
  'groups:history', // … and in private ones
  'users:read', // users.info: is the person a workspace admin
] as const;

export function slackManifest(host = PLACEHOLDER_HOST): Record<string, unknown> {
  const url = `${host}${SLACK_EVENTS_PATH}`;
  return {
    _metadata: { major_version: 1, minor_version: 1 },
    display_information: {
      name: 'sdbot',
      description: 'Self-hosted Stable Diffusion: /imagine pictures, remix them by mention',
      background_color: '#2c2d30',
    },
    features: {
      bot_user: { display_name: 'sdbot', always_online: true },
      slash_commands: [
        { command: IMAGINE, url, description: 'Make pictures with Stable Diffusion (`/imagine help` lists the flags)', usage_hint: imagineUsageHint(), should_escape: false },
        { command: ADMIN, url, description: 'Manage the Stable Diffusion bot (admins)', usage_hint: 'models | queue | load MODEL | unload MODEL | pause | resume | default workspace|channel … | cancel JOB | limits [N] | ban @user | unban @user', should_escape: true },
      ],
    },
    oauth_config: { scopes: { bot: [...SLACK_BOT_SCOPES] } },
    settings: {
      event_subscriptions: { request_url: url, bot_events: ['app_mention'] },
      interactivity: { is_enabled: true, request_url: url },
      org_deploy_enabled: false,
      socket_mode_enabled: false,
      token_rotation_enabled: false,
    },
  };
}
