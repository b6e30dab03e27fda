/**
 * `/sd-admin` logic, the same on every platform: adapters check who may run it, parse their platform's
 * arguments into an `AdminCommand`, and show the returned lines. Every action is logged.
 *
 * Model loading, pausing, queue depths and default models go through the queue's `QueueAdmin`; the default model
 * per server / channel lives in the queue's store (one source of truth for every bot process), the other
 * defaults (sampler, steps, count) in the bot's state.
 */
import type { DefaultModelScope, QueueAdmin, QueueClient } from '../../queue/client.js';
import { SAMPLERS, type SamplerName } from '../../queue/job.js';
import { scopeKey, type BotState, type ScopeDefaults } from './bot-state.js';
import type { DefaultModelCache } from './default-models.js';
import { UserError } from './errors.js';
import type { ModelCatalog } from './models.js';

export type AdminCommand =
  | { name: 'models' }
  | { name: 'load'; model: string; worker?: string }
  | { name: 'unload'; model: string; worker?: string }
  | { name: 'default'; scope: 'server' | 'channel'; model?: string; sampler?: string; steps?: number; count?: number; clear?: boolean }
  | { name: 'queue' }
  | { name: 'pause'; worker?: string }
  | { name: 'resume'; worker?: string }
  | { name: 'cancel'; jobId: string }
  | { name: 'limits'; maxJobsPerUser?: number }
  | { name: 'ban'; userId: string }
  | { name: 'unban'; userId: string };

export const ADMIN_SUBCOMMANDS = ['models', 'load', 'unload', 'default', 'queue', 'pause', 'resume', 'cancel', 'limits', 'ban', 'unban'] as const;

export type { QueueAdmin } from '../../queue/client.js';

export interface AdminContext {
  platform: string;
  userId: string;
  guildId?: string;
  channelId?: string;
}

export interface AdminDeps {
  queue: QueueClient;
  queueAdmin: QueueAdmin;
  defaultModels: DefaultModelCache;
  catalog: ModelCatalog;
  state: BotState;
  log: (entry: Record<string, unknown>, msg: string) => void;
}

export async function runAdmin(cmd: AdminCommand, ctx: AdminContext, deps: AdminDeps): Promise<string[]> {
  const lines = await execute(cmd, ctx, deps);
  deps.log({ admin: ctx.userId, platform: ctx.platform, guild: ctx.guildId, command: cmd }, `admin ${cmd.name}`);
  return lines;
}

async function execute(cmd: AdminCommand, ctx: AdminContext, deps: AdminDeps): Promise<string[]> {
  const { queue, queueAdmin, catalog, state } = deps;
  switch (cmd.name) {
    case 'models': {
      const workers = await queue.workers();
      await catalog.refresh();
      const ids = catalog.knownIds();
      if (ids.length === 0) return ['No models are known: no worker is online and the models file lists none.'];
      return ids.map((id) => {
        const holders = workers.filter((w) => w.models.includes(id)).map((w) => `\`${w.id}\``);
        const info = catalog.info(id);
        const kind = [info.family, info.role && info.role !== 'base' ? info.role : ''].filter(Boolean).join(' ');
        return `\`${id}\`${kind ? ` (${kind})` : ''}: ${holders.length ? `held by ${holders.join(', ')}` : 'not loaded'}`;
      });
    }
    case 'load':
    case 'unload': {
      if (cmd.name === 'load' && !catalog.knownIds().includes(cmd.model)) throw new UserError(`I don't know the model \`${cmd.model}\`.`);
      await queueAdmin.control({ cmd: cmd.name, model: cmd.model, ...(cmd.worker ? { worker: cmd.worker } : {}) });
      return [`Asked ${cmd.worker ? `worker \`${cmd.worker}\`` : 'the workers'} to ${cmd.name} \`${cmd.model}\`.`];
    }
    case 'default':
      return setDefault(cmd, ctx, deps);
    case 'queue': {
      const [workers, depth] = await Promise.all([queue.workers(), queueAdmin.depths()]);
      const lines = workers.length
        ? workers.map((w) => `\`${w.id}\` on ${w.host} (${w.device})${w.paused ? ' paused' : ''}: ${w.currentJob ? `running \`${w.currentJob}\`` : 'idle'}; models ${w.models.map((m) => `\`${m}\``).join(', ') || 'none'}${w.stepsPerSecond ? `; ${w.stepsPerSecond.toFixed(1)} steps/s` : ''}`)
        : ['No workers are online.'];
      lines.unshift(`Waiting: ${Object.entries(depth).map(([m, n]) => `\`${m}\` ${n}`).join(', ') || 'no model is being served'}`);
      return lines;
    }
    case 'pause':
    case 'resume': {
      await queueAdmin.control({ cmd: cmd.name, ...(cmd.worker ? { worker: cmd.worker } : {}) });
      return [`${cmd.name === 'pause' ? 'Paused' : 'Resumed'} ${cmd.worker ? `worker \`${cmd.worker}\`` : 'all workers'}.`];
    }
    case 'cancel': {
      const r = await queue.cancel(cmd.jobId, { userId: ctx.userId, isAdmin: true });
      const text = { cancelled: 'Cancelled', 'not-found': 'No such job:', forbidden: 'Not allowed to cancel', finished: 'Already finished:' }[r];
      return [`${text} \`${cmd.jobId}\`.`];
    }
    case 'limits':
      if (cmd.maxJobsPerUser !== undefined) await state.setMaxJobsPerUser(cmd.maxJobsPerUser);
      return [`Each user may have ${state.maxJobsPerUser} job(s) queued or running at once.`];
    case 'ban':
    case 'unban':
      await state.setBanned(ctx.platform, cmd.userId, cmd.name === 'ban');
      return [cmd.name === 'ban' ? `Banned user \`${cmd.userId}\` from making pictures.` : `User \`${cmd.userId}\` may make pictures again.`];
  }
}

async function setDefault(cmd: Extract<AdminCommand, { name: 'default' }>, ctx: AdminContext, deps: AdminDeps): Promise<string[]> {
  const id = cmd.scope === 'server' ? ctx.guildId : ctx.channelId;
  if (!id) throw new UserError(`There is no ${cmd.scope} here to set defaults for.`);
  const key = scopeKey(cmd.scope, ctx.platform, id);
  const scope: DefaultModelScope = cmd.scope === 'server' ? { kind: 'guild', id } : { kind: 'channel', id };
  if (cmd.clear) {
    await Promise.all([deps.state.setDefaults(key, null), deps.defaultModels.set(scope, null)]);
    return [`Cleared the ${cmd.scope} defaults.`];
  }
  const values: ScopeDefaults = {};
  if (cmd.model !== undefined) {
    if (!deps.catalog.knownIds().includes(cmd.model)) throw new UserError(`I don't know the model \`${cmd.model}\`.`);
    await deps.defaultModels.set(scope, cmd.model);
  }
  if (cmd.sampler !== undefined) {
    if (!(SAMPLERS as readonly string[]).includes(cmd.sampler)) throw new UserError(`Unknown sampler \`${cmd.sampler}\`. Allowed: ${SAMPLERS.join(', ')}.`);
    values.sampler = cmd.sampler as SamplerName;
  }
  if (cmd.steps !== undefined) values.steps = cmd.steps;
  if (cmd.count !== undefined) values.count = cmd.count;
  if (Object.keys(values).length) await deps.state.setDefaults(key, values);
  const { model: _legacy, ...others } = deps.state.getDefaults(key) ?? {};
  const model = deps.defaultModels.get(scope);
  const now = { ...(model ? { model } : {}), ...others };
  const shown = Object.entries(now).map(([k, v]) => `${k} \`${String(v)}\``).join(', ');
  return [`${cmd.scope === 'server' ? 'Server' : 'Channel'} defaults: ${shown || 'none'}.`];
}
