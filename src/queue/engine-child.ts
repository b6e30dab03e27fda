/**
 * The engine's own process (forked by ChildProcessEngine). The denoising loop is CPU/GPU-bound and may hold the
 * JavaScript thread for long stretches; running it here keeps the worker process's event loop free, so BullMQ lock
 * renewal, heartbeats and cancel messages never starve.
 *
 * Protocol (IPC, structured clone): see ChildRequest / ChildReply in child-engine.ts.
 */
import { pathToFileURL } from 'node:url';
import type { Engine, EngineOptions } from '../engine/engine.js';
import type { ChildReply, ChildRequest } from './child-engine.js';
import { Redis } from 'ioredis';

let engine: Engine | null = null;
const running = new Map<number, AbortController>();

function send(m: ChildReply): void {
  process.send?.(m);
}

function errorOf(e: unknown): { name: string; message: string } {
  return e instanceof Error ? { name: e.name, message: e.message } : { name: 'Error', message: String(e) };
}

async function handle(m: ChildRequest): Promise<void> {
  switch (m.t) {
    case 'init': {
      const mod = (await import(m.engineModule.startsWith('file:') ? m.engineModule : pathToFileURL(m.engineModule).href)) as {
        createEngine(o: EngineOptions): Promise<Engine>;
      };
      const options: EngineOptions = { providers: m.providers };
      if (m.redisUrl) {
        const redis = new Redis(m.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true });
        redis.on('error', () => {});
        options.fetchInput = async (key) => {
          const b = await redis.getBuffer(key);
          return b ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : null;
        };
      }
      engine = await mod.createEngine(options);
      send({ t: 'reply', rid: m.rid, ok: true, value: engine.device });
      return;
    }
    case 'load':
      await need().loadModel(m.entry);
      send({ t: 'reply', rid: m.rid, ok: true, value: null });
      return;
    case 'unload':
      await need().unloadModel(m.id);
      send({ t: 'reply', rid: m.rid, ok: true, value: null });
      return;
    case 'run': {
      const ac = new AbortController();
      running.set(m.rid, ac);
      try {
        const result = await need().runJob(m.request, {
          signal: ac.signal,
          onProgress: (e) => send({ t: 'progress', rid: m.rid, step: e.step, total: e.total, preview: e.preview }),
        });
        send({ t: 'reply', rid: m.rid, ok: true, value: result });
      } finally {
        running.delete(m.rid);
      }
      return;
    }
    case 'abort':
      running.get(m.target)?.abort(new Error(m.reason));
      return;
    case 'close':
      await engine?.close();
      process.exit(0);
  }
}

function need(): Engine {
  if (!engine) throw new Error('engine not initialised');
  return engine;
}

process.on('message', (m: ChildRequest) => {
  handle(m).catch((e: unknown) => {
    if ('rid' in m) send({ t: 'reply', rid: m.rid, ok: false, error: errorOf(e) });
  });
});
// The worker process is gone (even SIGKILLed): nobody will read our results.
process.on('disconnect', () => process.exit(0));
