/**
 * The queue's default-model settings (one store for every bot process and platform) mirrored in memory: commands
 * read them synchronously before the platform's ack deadline. Refreshed on an interval, and at once when this
 * process changes one, so another bot process sees a change within one interval.
 */
import type { DefaultModelScope, QueueAdmin } from '../../queue/client.js';
import type { Origin } from '../../queue/job.js';

function field(s: DefaultModelScope): string {
  return s.kind === 'global' ? 'global' : `${s.kind}:${s.id}`;
}

export class DefaultModelCache {
  private byField = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly admin: Pick<QueueAdmin, 'listDefaultModels' | 'setDefaultModel'>) {}

  async start(intervalMs: number): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async refresh(): Promise<void> {
    const list = await this.admin.listDefaultModels();
    this.byField = new Map(list.map(({ scope, model }) => [field(scope), model]));
  }

  /** Channel, then server / workspace, then global; undefined when none is set. */
  resolve(origin: Pick<Origin, 'guildId' | 'channelId'>): string | undefined {
    return (
      (origin.channelId ? this.byField.get(field({ kind: 'channel', id: origin.channelId })) : undefined) ??
      (origin.guildId ? this.byField.get(field({ kind: 'guild', id: origin.guildId })) : undefined) ??
      this.byField.get('global')
    );
  }

  get(scope: DefaultModelScope): string | undefined {
    return this.byField.get(field(scope));
  }

  async set(scope: DefaultModelScope, model: string | null): Promise<void> {
    await this.admin.setDefaultModel(scope, model);
    if (model === null) this.byField.delete(field(scope));
    else this.byField.set(field(scope), model);
  }
}
