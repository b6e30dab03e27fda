/**
 * Delivers a job's messages to one platform message: at most one edit per interval (Discord and Slack both rate
 * limit edits), never two edits in flight, the newest progress replacing any not yet sent, and the final message
 * always delivered last.
 */
import type { BotMessage } from './messages.js';

export type MessageSink = (message: BotMessage) => Promise<void>;

export class ThrottledSink {
  private inflight: Promise<void> = Promise.resolve();
  private pending: BotMessage | null = null;
  private timer: NodeJS.Timeout | undefined;
  private lastSentAt = -Infinity;
  private closed = false;

  constructor(
    private readonly sink: MessageSink,
    private readonly intervalMs: number,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  /** Progress: queued, maybe replaced by a newer one before it goes out. */
  push(message: BotMessage): void {
    if (this.closed) return;
    this.pending = message;
    if (this.timer) return;
    const wait = Math.max(0, this.lastSentAt + this.intervalMs - Date.now());
    this.timer = setTimeout(() => this.flush(), wait);
  }

  /** The last message: waits for the edit in flight, drops pending progress, resolves once delivered. */
  async finish(message: BotMessage): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.pending = null;
    this.inflight = this.inflight.then(() => this.send(message, true));
    await this.inflight;
  }

  private flush(): void {
    this.timer = undefined;
    const message = this.pending;
    this.pending = null;
    if (!message || this.closed) return;
    this.inflight = this.inflight.then(() => this.send(message, false));
  }

  private async send(message: BotMessage, final: boolean): Promise<void> {
    if (!final && this.closed) return;
    this.lastSentAt = Date.now();
    try {
      await this.sink(message);
    } catch (err) {
      if (final) throw err;
      this.onError(err);
    }
  }
}
