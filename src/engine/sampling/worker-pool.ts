/**
 * The engine's noise worker threads, kept loaded between jobs: starting one (a fresh isolate, plus the tsx loader
 * when running from sources) costs ~100 ms, as much as several denoising steps.
 *
 * A worker told to stop finishes the item it is computing first (a Brownian query can take ~10 ms). Back-to-back
 * jobs are the common case on a busy queue, so a job that asks for a worker then waits for a finishing one rather
 * than starting another, which would cost more and leave the pool a worker larger for good.
 */
import { Worker } from 'node:worker_threads';

/** Loaded workers between jobs, per worker module. */
const idle = new Map<string, Worker[]>();
/** Workers still finishing their last job, per worker module, oldest first. */
const finishing = new Map<string, Promise<Worker>[]>();

/** `name`: a worker module beside this one, without its extension. */
function spawnWorker(name: string): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, import.meta.url));
  // Running from TypeScript sources (CLI, tests, engine children): a worker does not inherit the tsx loader, so its
  // bootstrap registers it before importing the worker module.
  const api = import.meta.resolve('tsx/esm/api');
  const entry = new URL(`./${name}.ts`, import.meta.url).href;
  const boot = `(async () => { (await import(${JSON.stringify(api)})).register(); await import(${JSON.stringify(entry)}); })()`;
  return new Worker(boot, { eval: true });
}

/** A worker of module `name` whose module has loaded (it says 'ready'): idle, finishing, or new. */
export async function acquireWorker(name: string): Promise<Worker> {
  const pooled = idle.get(name)?.pop();
  if (pooled) return pooled;
  const soon = finishing.get(name)?.shift();
  if (soon) return soon;
  const w = spawnWorker(name);
  w.unref();
  await new Promise<void>((resolve, reject) => {
    w.once('message', () => resolve());
    w.once('error', reject);
  });
  return w;
}

/** Hands back a worker that has no job (it never got one, or has said it is done). */
export function releaseWorker(name: string, w: Worker): void {
  let pool = idle.get(name);
  if (!pool) idle.set(name, (pool = []));
  pool.push(w);
}

/** Hands back a worker that was told to stop; `done` settles when it says it has. */
export function releaseWhenDone(name: string, w: Worker, done: Promise<unknown>): void {
  let queue = finishing.get(name);
  if (!queue) finishing.set(name, (queue = []));
  const ready = done.then(() => w);
  queue.push(ready);
  void ready.then(() => {
    // still queued: nobody is waiting for it, so it goes to the idle pool
    const i = queue.indexOf(ready);
    if (i < 0) return;
    queue.splice(i, 1);
    releaseWorker(name, w);
  });
}
