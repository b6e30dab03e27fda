/**
 * Settings admins change at run time: per-server and per-channel defaults, banned users, the per-user job limit.
 * Commands read them synchronously (before the 3 s deferral), so they live in memory; a persistence hook (Redis in
 * production) saves every change and loads them at start, so they survive restarts.
 */
import type { SamplerName } from '../../queue/job.js';

export interface ScopeDefaults {
  model?: string;
  sampler?: SamplerName;
  steps?: number;
  count?: number;
}

export interface BotStateSnapshot {
  defaults: Record<string, ScopeDefaults>;
  banned: string[];
  /** Jobs one user may have queued or running at once. */
  maxJobsPerUser: number;
}

export interface StatePersistence {
  load(): Promise<BotStateSnapshot | null>;
  save(snapshot: BotStateSnapshot): Promise<void>;
}

export const DEFAULT_MAX_JOBS_PER_USER = 3;

export function scopeKey(kind: 'server' | 'channel', platform: string, id: string): string {
  return `${platform}:${kind}:${id}`;
}

export class BotState {
  private snapshot: BotStateSnapshot = { defaults: {}, banned: [], maxJobsPerUser: DEFAULT_MAX_JOBS_PER_USER };

  constructor(private readonly persistence?: StatePersistence) {}

  async load(): Promise<void> {
    const loaded = await this.persistence?.load();
    if (loaded) this.snapshot = { ...this.snapshot, ...loaded };
  }

  /** Server defaults overlaid by channel defaults. */
  defaultsFor(platform: string, guildId?: string, channelId?: string): ScopeDefaults {
    const server = guildId ? this.snapshot.defaults[scopeKey('server', platform, guildId)] : undefined;
    const channel = channelId ? this.snapshot.defaults[scopeKey('channel', platform, channelId)] : undefined;
    return { ...server, ...channel };
  }

  getDefaults(key: string): ScopeDefaults | undefined {
    return this.snapshot.defaults[key];
  }

  async setDefaults(key: string, values: ScopeDefaults | null): Promise<void> {
    const defaults = { ...this.snapshot.defaults };
    if (values && Object.keys(values).length > 0) defaults[key] = { ...defaults[key], ...values };
    else delete defaults[key];
    await this.update({ defaults });
  }

  isBanned(platform: string, userId: string): boolean {
    return this.snapshot.banned.includes(`${platform}:${userId}`);
  }

  async setBanned(platform: string, userId: string, banned: boolean): Promise<void> {
    const key = `${platform}:${userId}`;
    const rest = this.snapshot.banned.filter((b) => b !== key);
    await this.update({ banned: banned ? [...rest, key] : rest });
  }

  get maxJobsPerUser(): number {
    return this.snapshot.maxJobsPerUser;
  }

  async setMaxJobsPerUser(n: number): Promise<void> {
    await this.update({ maxJobsPerUser: n });
  }

  private async update(change: Partial<BotStateSnapshot>): Promise<void> {
    this.snapshot = { ...this.snapshot, ...change };
    await this.persistence?.save(this.snapshot);
  }
}
