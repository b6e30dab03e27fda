/**
 * The platform-neutral bot: what an adapter calls after turning a platform event into plain values.
 *
 *   prepare()       sync, before the platform's ack deadline: bans, per-user limit, options → Draft (or UserError)
 *   attachImages()  after the ack: download the attachments with checks, store them for the engine
 *   run()           enqueue and follow the job, rendering messages through the adapter's sink
 *   followUp()      a button click → the follow-up request
 */
import type { AdminQueueClient, QueueAdmin } from '../../queue/client.js';
import type { GenerationRequest, ImageRef, Origin } from '../../queue/job.js';
import { decodeAction, followUpRequest, type ButtonAction } from './actions.js';
import { runAdmin, type AdminCommand, type AdminContext } from './admin.js';
import type { BotState, ScopeDefaults } from './bot-state.js';
import { DefaultModelCache } from './default-models.js';
import { UserError } from './errors.js';
import { DEFAULT_LIMITS, fetchCheckedImage, type FetchPolicy } from './fetch-image.js';
import { followJob, type JobOutcome } from './job-follower.js';
import type { ModelCatalog } from './models.js';
import type { MessageSink } from './throttled-sink.js';
import { buildDraft, randomSeed, type Draft, type ImagineInput, type PromptTokenizer } from './validate.js';
import type { WordFilter } from './word-filter.js';

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface BotCoreOptions {
  queue: AdminQueueClient;
  catalog: ModelCatalog;
  state: BotState;
  /** Admin side of the queue when it is not `queue` itself. */
  queueAdmin?: QueueAdmin;
  /** Mirror of the queue's default models (createBotCore starts one that refreshes); else one filled on demand. */
  defaultModels?: DefaultModelCache;
  filter?: WordFilter;
  tokenizerFor?: (model: string) => PromptTokenizer | undefined;
  /** Minimum gap between progress edits (Discord and Slack both throttle edits). */
  progressIntervalMs?: number;
  imageLimits?: { maxBytes: number; maxPixels: number };
  logger: Logger;
}

export interface RunOptions {
  maxUploadBytes: number;
  startedAt?: number;
  notes?: string[];
}

const SLOT_NAMES = { image: 'The image', mask: 'The mask', depth: 'The depth map', control: 'The control image' } as const;

export class BotCore {
  private readonly active = new Map<string, number>();
  readonly defaultModels: DefaultModelCache;

  constructor(readonly options: BotCoreOptions) {
    this.defaultModels = options.defaultModels ?? new DefaultModelCache(this.queueAdmin);
  }

  get queue(): AdminQueueClient {
    return this.options.queue;
  }

  get queueAdmin(): QueueAdmin {
    return this.options.queueAdmin ?? this.options.queue;
  }

  get catalog(): ModelCatalog {
    return this.options.catalog;
  }

  get imageLimits(): { maxBytes: number; maxPixels: number } {
    return this.options.imageLimits ?? DEFAULT_LIMITS;
  }

  /** Checks the person may ask, then validates what they asked. No I/O. */
  prepare(input: ImagineInput): Draft {
    this.checkUser(input.origin);
    const { state } = this.options;
    return buildDraft(input, {
      catalog: this.options.catalog,
      defaults: this.defaultsFor(input.origin),
      ...(this.options.tokenizerFor ? { tokenizerFor: this.options.tokenizerFor } : {}),
      ...(this.options.filter ? { filter: this.options.filter } : {}),
    });
  }

  /** Sampler, steps and count from the bot's settings; the model from the queue's default-model store. */
  defaultsFor(origin: Origin): ScopeDefaults {
    const { model: _legacy, ...rest } = this.options.state.defaultsFor(origin.platform, origin.guildId, origin.channelId);
    const model = this.defaultModels.resolve(origin);
    return model ? { ...rest, model } : rest;
  }

  checkUser(origin: Origin): void {
    const { state } = this.options;
    if (state.isBanned(origin.platform, origin.userId)) throw new UserError("You can't make pictures here: an admin has blocked you.");
    const running = this.active.get(userKey(origin)) ?? 0;
    if (running >= state.maxJobsPerUser) {
      throw new UserError(`You already have ${running} job(s) queued or running (the limit is ${state.maxJobsPerUser}); wait for one to finish.`);
    }
  }

  /** Downloads the draft's images (host, size, type, pixel checks) and stores them where engines can read them. */
  async attachImages(draft: Draft, policy: Omit<FetchPolicy, 'maxBytes' | 'maxPixels'>): Promise<GenerationRequest> {
    const full: FetchPolicy = { ...this.imageLimits, ...policy };
    const refs: Partial<Record<keyof typeof SLOT_NAMES, ImageRef>> = {};
    for (const slot of ['image', 'mask', 'depth', 'control'] as const) {
      const remote = draft.images[slot];
      if (!remote) continue;
      const bytes = await fetchCheckedImage(remote, full, SLOT_NAMES[slot]);
      refs[slot] = await this.options.queue.putInput(bytes);
    }
    return { ...draft.request, initImage: refs.image ?? null, maskImage: refs.mask ?? null, depthImage: refs.depth ?? null, controlImage: refs.control ?? null };
  }

  /** Enqueues and follows the job until its final message has been delivered. */
  async run(request: GenerationRequest, sink: MessageSink, options: RunOptions): Promise<{ jobId: string; outcome: JobOutcome }> {
    this.checkUser(request.origin);
    const key = userKey(request.origin);
    this.active.set(key, (this.active.get(key) ?? 0) + 1);
    try {
      const receipt = await this.options.queue.enqueue(request);
      this.options.logger.info({ jobId: receipt.jobId, user: request.origin.userId, model: request.model, kind: request.kind }, 'job queued');
      const outcome = await followJob(this.options.queue, receipt, request, sink, {
        progressIntervalMs: this.options.progressIntervalMs ?? 2000,
        maxUploadBytes: options.maxUploadBytes,
        startedAt: options.startedAt ?? Date.now(),
        notes: options.notes ?? [],
        onSinkError: (err) => this.options.logger.warn({ err: String(err) }, 'progress edit failed'),
      });
      return { jobId: receipt.jobId, outcome };
    } finally {
      const left = (this.active.get(key) ?? 1) - 1;
      if (left > 0) this.active.set(key, left);
      else this.active.delete(key);
    }
  }

  decodeAction(id: string): ButtonAction | null {
    return decodeAction(id);
  }

  /** The stored request behind a button, or a UserError when it has expired. */
  async originalRequest(jobId: string): Promise<GenerationRequest> {
    const original = await this.options.queue.getRequest(jobId);
    if (!original) throw new UserError('That picture is too old: its job has expired, so its buttons no longer work. Run `/imagine` again.');
    return original;
  }

  async followUp(action: ButtonAction, origin: Origin, messageImages: () => Promise<Uint8Array[]>): Promise<GenerationRequest> {
    this.checkUser(origin);
    const original = await this.originalRequest(action.jobId);
    return followUpRequest(action, original, {
      catalog: this.options.catalog,
      origin,
      messageImages: async () => (await this.storedResult(action.jobId)) ?? messageImages(),
      putInput: (bytes) => this.options.queue.putInput(bytes),
      randomSeed,
    });
  }

  /**
   * The job's original PNGs while the queue still stores them (full quality, one per image, no re-encoding), else
   * null: the caller falls back to the pictures on the message.
   */
  async storedResult(jobId: string): Promise<Uint8Array[] | null> {
    try {
      const stored = await this.queueAdmin.getResult(jobId);
      if (!stored || stored.length === 0) return null;
      const pngs = await Promise.all(stored.map((s) => this.options.queue.getImage(s.key)));
      return pngs.every((p): p is Uint8Array => p !== null) ? pngs : null;
    } catch (err) {
      this.options.logger.warn({ jobId, err: String(err) }, 'stored result unavailable; using the message pictures');
      return null;
    }
  }

  /** Owners delete their own pictures; admins any. */
  async mayDelete(jobId: string, userId: string, isAdmin: boolean): Promise<boolean> {
    if (isAdmin) return true;
    const original = await this.options.queue.getRequest(jobId);
    return original?.origin.userId === userId;
  }

  admin(cmd: AdminCommand, ctx: AdminContext): Promise<string[]> {
    return runAdmin(cmd, ctx, {
      queue: this.options.queue,
      queueAdmin: this.queueAdmin,
      defaultModels: this.defaultModels,
      catalog: this.options.catalog,
      state: this.options.state,
      log: (entry, msg) => this.options.logger.info(entry, msg),
    });
  }
}

function userKey(origin: Origin): string {
  return `${origin.platform}:${origin.userId}`;
}
