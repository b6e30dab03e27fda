/**
 * Work that follows an ack waits its turn: one waiter is released per event-loop turn (setImmediate), and each
 * turn's poll phase reads the requests that have arrived meanwhile and acks them first. Under a burst of commands
 * the acks (3 s deadline) then go out ahead of the progress messages and queue calls of the commands before them.
 */
export class AckFirstGate {
  private readonly waiting: (() => void)[] = [];
  private scheduled = false;

  turn(): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.waiting.shift()?.();
      if (this.waiting.length > 0) this.schedule();
    });
  }
}
