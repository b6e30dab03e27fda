/** QueueAdmin on a queue client that has the control channel (RedisQueueClient's `control`). */
import type { QueueAdmin } from './admin.js';

type ControlMessage =
  | { cmd: 'load'; model: string; worker?: string }
  | { cmd: 'unload'; model: string; worker?: string }
  | { cmd: 'pause'; worker?: string }
  | { cmd: 'resume'; worker?: string };

export interface ControllableQueue {
  control(msg: ControlMessage): Promise<void>;
}

export function hasControl(queue: object): queue is ControllableQueue {
  return typeof (queue as Partial<ControllableQueue>).control === 'function';
}

export function queueAdminOf(queue: object): QueueAdmin | undefined {
  if (!hasControl(queue)) return undefined;
  const w = (worker?: string) => (worker ? { worker } : {});
  return {
    loadModel: (model, worker) => queue.control({ cmd: 'load', model, ...w(worker) }),
    unloadModel: (model, worker) => queue.control({ cmd: 'unload', model, ...w(worker) }),
    pause: (worker) => queue.control({ cmd: 'pause', ...w(worker) }),
    resume: (worker) => queue.control({ cmd: 'resume', ...w(worker) }),
  };
}
