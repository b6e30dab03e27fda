/**
 * What the bot knows about models: ids some live worker holds (from the queue) merged with the models file's
 * entries (family, role, default size). Validation reads it synchronously, so it is a cache refreshed in the
 * background rather than a query per command.
 */
import type { QueueClient } from '../../queue/client.js';

export type ModelRole = 'base' | 'inpaint' | 'depth' | 'upscaler' | 'variation' | 'refiner' | 'controlnet';

export interface ModelInfo {
  id: string;
  /** sd15, sd2, sdxl, sd3; unknown when neither the models file nor the id says. */
  family?: string;
  role?: ModelRole;
  /** The model's native size; aspect ratios keep its pixel count. */
  defaultSize?: { width: number; height: number };
  /** The models file's default model. */
  isDefault?: boolean;
}

const FAMILY_SIZE: Record<string, number> = { sd15: 512, sd2: 768, sdxl: 1024, sd3: 1024 };

/** Best guess from an id like "sdxl-base-1.0" or "stable-diffusion-x4-upscaler", for models the file does not list. */
export function guessModelInfo(id: string): ModelInfo {
  const s = id.toLowerCase();
  const family = /sd3|stable-diffusion-3/.test(s) ? 'sd3'
    : /xl/.test(s) ? 'sdxl'
    : /sd-?2|stable-diffusion-2|x4-upscaler|depth/.test(s) ? 'sd2'
    : /sd-?1|stable-diffusion-v1/.test(s) ? 'sd15'
    : undefined;
  const role: ModelRole = /upscal/.test(s) ? 'upscaler'
    : /inpaint/.test(s) ? 'inpaint'
    : /depth/.test(s) ? 'depth'
    : /refiner/.test(s) ? 'refiner'
    : /controlnet|canny/.test(s) ? 'controlnet'
    : /unclip|variation/.test(s) ? 'variation'
    : 'base';
  return { id, ...(family ? { family } : {}), role };
}

export function defaultSizeOf(info: ModelInfo | undefined): { width: number; height: number } {
  if (info?.defaultSize) return info.defaultSize;
  const side = (info?.family && FAMILY_SIZE[info.family]) || 512;
  return { width: side, height: side };
}

export class ModelCatalog {
  private live: string[] = [];
  private readonly configured: Map<string, ModelInfo>;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly queue: Pick<QueueClient, 'models'>, configured: readonly ModelInfo[] = []) {
    this.configured = new Map(configured.map((m) => [m.id, m]));
  }

  /** Loads the live list now and then every `intervalMs` (autocomplete and validation read the cache). */
  async start(intervalMs = 10_000): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async refresh(): Promise<void> {
    this.live = await this.queue.models();
  }

  /** Ids a worker holds now. */
  liveIds(): string[] {
    return [...this.live];
  }

  /** Every id a request may name: live ones and those the models file lists (a worker may load them later). */
  knownIds(): string[] {
    return [...new Set([...this.live, ...this.configured.keys()])].sort();
  }

  isLive(id: string): boolean {
    return this.live.includes(id);
  }

  info(id: string): ModelInfo {
    return this.configured.get(id) ?? guessModelInfo(id);
  }

  /** A live model with this role, preferring the given family. */
  findRole(role: ModelRole, family?: string): string | undefined {
    const candidates = this.live.filter((id) => this.info(id).role === role);
    return candidates.find((id) => family && this.info(id).family === family) ?? candidates[0];
  }

  /** The models file's default, else the first live base model, else any known model. */
  fallbackDefault(): string | undefined {
    const configuredDefault = [...this.configured.values()].find((m) => m.isDefault)?.id;
    const liveBase = this.live.find((id) => (this.info(id).role ?? 'base') === 'base');
    return configuredDefault ?? liveBase ?? this.knownIds()[0];
  }
}
