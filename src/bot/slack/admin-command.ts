/**
 * `/sd-admin …` text → the core's AdminCommand, and who may run it: users listed in SLACK_ADMIN_USER_IDS, and
 * workspace admins and owners as users.info reports them (https://docs.slack.dev/reference/methods/users.info).
 */
import type { webApi } from '@slack/bolt';
import { ADMIN_SUBCOMMANDS, type AdminCommand } from '../core/admin.js';
import { UserError } from '../core/errors.js';
import { closest } from '../core/flags.js';

export const ADMIN_USAGE = [
  '*/sd-admin* subcommands:',
  '`models` · `queue` · `load MODEL [WORKER]` · `unload MODEL [WORKER]` · `pause [WORKER]` · `resume [WORKER]`',
  '`default workspace|channel [model=ID] [sampler=NAME] [steps=N] [count=N] [clear]`',
  '`cancel JOB_ID` · `limits [PER_USER]` · `ban @user` · `unban @user`',
].join('\n');

/** Users in the allowlist, else workspace admins / owners. */
export async function isSlackAdmin(client: webApi.WebClient, userId: string, allowlist: ReadonlySet<string>): Promise<boolean> {
  if (allowlist.has(userId)) return true;
  try {
    const res = await client.users.info({ user: userId });
    const u = res.user;
    return Boolean(u && (u.is_admin || u.is_owner || u.is_primary_owner));
  } catch {
    return false;
  }
}

/** `<@U123|name>` (escaped by Slack when the command asks for it) or a bare id. */
function userIdOf(word: string | undefined): string {
  const m = /^<@([A-Z0-9]+)(?:\|[^>]*)?>$/i.exec(word ?? '') ?? /^@?([UW][A-Z0-9]{2,})$/.exec(word ?? '');
  if (!m?.[1]) throw new UserError('Name the user with an @-mention, e.g. `/sd-admin ban @someone`.');
  return m[1];
}

function whole(word: string | undefined, what: string, min: number, max: number): number {
  const n = Number(word);
  if (!word || !Number.isInteger(n) || n < min || n > max) throw new UserError(`${what} must be a whole number from ${min} to ${max}; you gave \`${word ?? ''}\`.`);
  return n;
}

/** null for an empty command or `help`: show the usage. */
export function parseAdminText(text: string): AdminCommand | null {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const [first, ...rest] = words;
  const name = first?.toLowerCase();
  if (!name || name === 'help') return null;
  const worker = rest[1] ? { worker: rest[1] } : {};
  switch (name) {
    case 'models':
    case 'queue':
      return { name };
    case 'load':
    case 'unload':
      if (!rest[0]) throw new UserError(`\`${name}\` needs a model id, e.g. \`/sd-admin ${name} sdxl-base\`.`);
      return { name, model: rest[0], ...worker };
    case 'pause':
    case 'resume':
      return { name, ...(rest[0] ? { worker: rest[0] } : {}) };
    case 'default':
      return parseDefault(rest);
    case 'cancel':
      if (!rest[0]) throw new UserError('`cancel` needs a job id.');
      return { name, jobId: rest[0] };
    case 'limits':
      return { name, ...(rest[0] ? { maxJobsPerUser: whole(rest[0], 'The per-user limit', 1, 50) } : {}) };
    case 'ban':
    case 'unban':
      return { name, userId: userIdOf(rest[0]) };
    default: {
      const near = closest(name, ADMIN_SUBCOMMANDS);
      throw new UserError(`I don't know \`/sd-admin ${name}\`.${near ? ` Did you mean \`${near}\`?` : ''}\n${ADMIN_USAGE}`);
    }
  }
}

function parseDefault(words: string[]): AdminCommand {
  const [scopeWord, ...settings] = words;
  const scope = scopeWord === 'channel' ? 'channel' : scopeWord === 'workspace' || scopeWord === 'server' ? 'server' : null;
  if (!scope) throw new UserError('`default` needs a scope first: `workspace` or `channel`, e.g. `/sd-admin default channel steps=20`.');
  const cmd: Extract<AdminCommand, { name: 'default' }> = { name: 'default', scope };
  for (const s of settings) {
    const [key, value] = s.split('=', 2);
    if (key === 'clear' && value === undefined) cmd.clear = true;
    else if (key === 'model' && value) cmd.model = value;
    else if (key === 'sampler' && value) cmd.sampler = value;
    else if (key === 'steps') cmd.steps = whole(value, '`steps`', 1, 150);
    else if (key === 'count') cmd.count = whole(value, '`count`', 1, 4);
    else throw new UserError(`I don't understand \`${s}\`: use \`model=ID\`, \`sampler=NAME\`, \`steps=N\`, \`count=N\` or \`clear\`.`);
  }
  return cmd;
}
