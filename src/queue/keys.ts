/**
 * Every Redis key and BullMQ queue name the queue uses, in one place. All keys start with a prefix (default
 * "sdbot") so several deployments or test runs can share one Redis.
 */

/** Model ids become BullMQ queue names and key parts: keep them to a safe alphabet (folder names usually are). */
export const MODEL_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export function assertModelId(id: string): void {
  if (!MODEL_ID_PATTERN.test(id)) {
    throw new Error(`model id "${id}" must be letters, digits, ".", "_" or "-" (at most 100 characters)`);
  }
}

export class QueueKeys {
  constructor(readonly prefix = 'sdbot') {}

  /** One BullMQ queue per model id: a worker that holds a model consumes exactly its queue. */
  queueName(model: string): string {
    return `gen-${model}`;
  }
  /** BullMQ's own sorted set of prioritized jobs (used for queue positions; see positions in redis-client.ts). */
  prioritized(model: string): string {
    return `${this.prefix}:${this.queueName(model)}:prioritized`;
  }
  waitList(model: string): string {
    return `${this.prefix}:${this.queueName(model)}:wait`;
  }
  delayed(model: string): string {
    return `${this.prefix}:${this.queueName(model)}:delayed`;
  }
  /** BullMQ's hash for one job. */
  bullJob(model: string, jobId: string): string {
    return `${this.prefix}:${this.queueName(model)}:${jobId}`;
  }
  /** The global stream of job updates (started, progress, terminal) every client reads. */
  get events(): string {
    return `${this.prefix}:events`;
  }
  /** The terminal update of a job, written once (the "delivered once" guard). */
  done(jobId: string): string {
    return `${this.prefix}:done:${jobId}`;
  }
  request(jobId: string): string {
    return `${this.prefix}:req:${jobId}`;
  }
  image(id: string): string {
    return `${this.prefix}:img:${id}`;
  }
  input(id: string): string {
    return `${this.prefix}:input:${id}`;
  }
  cancel(jobId: string): string {
    return `${this.prefix}:cancel:${jobId}`;
  }
  /** Jobs a user has queued or running (the per-user cap). */
  userJobs(userId: string): string {
    return `${this.prefix}:user:${userId}:jobs`;
  }
  worker(id: string): string {
    return `${this.prefix}:worker:${id}`;
  }
  get workers(): string {
    return `${this.prefix}:workers`;
  }
  /** Average run time per model, for wait estimates. */
  get runStats(): string {
    return `${this.prefix}:runms`;
  }
  get control(): string {
    return `${this.prefix}:control`;
  }
  /** Default model per scope ("global", "guild:<id>", "channel:<id>"). */
  get defaults(): string {
    return `${this.prefix}:defaults`;
  }
}
