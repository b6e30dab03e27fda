/**
 * `/sd-admin SUBCOMMAND …` typed in the web chat → the core's AdminCommand. Arguments follow the Discord
 * subcommands' order (`load MODEL [WORKER]`); named settings of `default` use flags like /imagine's
 * (`default channel --steps 20 --sampler euler_a`, `default server --clear`).
 */
import { ADMIN_SUBCOMMANDS, type AdminCommand } from '../core/admin.js';
import { UserError } from '../core/errors.js';

export const ADMIN_USAGE: Record<(typeof ADMIN_SUBCOMMANDS)[number], string> = {
  models: 'models — known models and which workers hold them',
  load: 'load MODEL [WORKER] — load a model on the workers',
  unload: 'unload MODEL [WORKER] — unload a model',
  default: 'default server|channel [--model M] [--sampler S] [--steps N] [--count N] [--clear] — defaults for this chat',
  queue: 'queue — queue depth, running jobs and workers',
  pause: 'pause [WORKER] — stop workers taking new jobs',
  resume: 'resume [WORKER] — let workers take jobs again',
  cancel: 'cancel JOB — cancel a job',
  limits: 'limits [N] — show or set the per-user job limit',
  ban: 'ban USER — stop a user from making pictures',
  unban: 'unban USER — let a user make pictures again',
};

export function adminUsage(): string[] {
  return ['`/sd-admin` subcommands:', ...ADMIN_SUBCOMMANDS.map((s) => `\`${ADMIN_USAGE[s].split(' — ')[0]}\` — ${ADMIN_USAGE[s].split(' — ')[1]}`)];
}

function whole(v: string | undefined, what: string): number {
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n) || n < 1) throw new UserError(`${what} must be a whole number ≥ 1.`);
  return n;
}

export function parseAdminText(args: string): AdminCommand {
  const words = args.trim().split(/\s+/).filter(Boolean);
  const [sub, ...rest] = words;
  const need = (i: number, what: string): string => {
    const v = rest[i];
    if (!v) throw new UserError(`\`/sd-admin ${sub}\` needs ${what}: \`/sd-admin ${ADMIN_USAGE[sub as keyof typeof ADMIN_USAGE].split(' — ')[0]}\`.`);
    return v;
  };
  const worker = rest[1] ? { worker: rest[1] } : {};
  switch (sub) {
    case 'models':
    case 'queue':
      return { name: sub };
    case 'load':
    case 'unload':
      return { name: sub, model: need(0, 'a model id'), ...worker };
    case 'pause':
    case 'resume':
      return { name: sub, ...(rest[0] ? { worker: rest[0] } : {}) };
    case 'cancel':
      return { name: sub, jobId: need(0, 'a job id') };
    case 'limits':
      return { name: sub, ...(rest[0] ? { maxJobsPerUser: whole(rest[0], 'The limit') } : {}) };
    case 'ban':
    case 'unban':
      return { name: sub, userId: need(0, 'a user id') };
    case 'default':
      return parseDefault(rest);
    default:
      throw new UserError(sub ? `I don't know \`/sd-admin ${sub}\`.` : 'Which admin command?');
  }
}

function parseDefault(rest: string[]): AdminCommand {
  const [scope, ...flags] = rest;
  if (scope !== 'server' && scope !== 'channel') throw new UserError('`/sd-admin default` needs a scope: `server` or `channel`.');
  const cmd: Extract<AdminCommand, { name: 'default' }> = { name: 'default', scope };
  for (let i = 0; i < flags.length; i++) {
    const flag = flags[i];
    const value = flags[i + 1];
    switch (flag) {
      case '--clear':
        cmd.clear = true;
        continue;
      case '--model':
      case '--sampler':
        if (!value) throw new UserError(`\`${flag}\` needs a value.`);
        cmd[flag === '--model' ? 'model' : 'sampler'] = value;
        break;
      case '--steps':
      case '--count':
        cmd[flag === '--steps' ? 'steps' : 'count'] = whole(value, `\`${flag}\``);
        break;
      default:
        throw new UserError(`\`/sd-admin default\` doesn't take \`${flag}\`; it takes --model, --sampler, --steps, --count, --clear.`);
    }
    i++;
  }
  return cmd;
}
