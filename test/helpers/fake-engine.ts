/**
 * A test double for queue semantics: an Engine that "denoises" by waiting, then returns a 1×1 PNG whose `parameters`
 * text chunk names the prompt, seed and image index (so tests can tell results apart). Behaviour is steered by
 * words in the prompt:
 *   noop            return at once (no steps, no progress)
 *   step=MS         each step waits MS ms (default 20)
 *   busy            each step spins the CPU instead of waiting (blocks the event loop)
 *   bad             throw BadRequestError (never retried)
 *   fail=N@FILE     throw a transient Error on the first N runs (every run appends a byte to FILE, so tests can
 *                   count runs across processes; N=0 only counts)
 *   crash           exit the process mid-job
 * Steps come from request.steps (default 4). Honours AbortSignal between steps.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { deflateSync, crc32 } from 'node:zlib';
import type { Engine, EngineOptions, ModelEntry } from '../../src/engine/engine.js';
import { BadRequestError, CancelledError, seedForImage, type GenerationRequest, type GenerationResult, type JobHooks } from '../../src/queue/job.js';

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}

export function tinyPng(text: string): Uint8Array {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(1, 0);
  ihdr.writeUInt32BE(1, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grayscale
  const raw = Buffer.from([0, 128]); // filter byte + one pixel
  const png = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('tEXt', Buffer.from(`parameters\0${text}`, 'latin1')),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
  return new Uint8Array(png);
}

function word(prompt: string, name: string): string | undefined {
  const m = new RegExp(`(?:^|\\s)${name}(?:=(\\S+))?(?=\\s|$)`).exec(prompt);
  return m ? (m[1] ?? '') : undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class FakeEngine implements Engine {
  readonly device = 'fake';
  private readonly models = new Map<string, ModelEntry>();

  async runJob(request: GenerationRequest, hooks: JobHooks = {}): Promise<GenerationResult> {
    const t0 = Date.now();
    const p = request.prompt;
    const fail = word(p, 'fail');
    if (fail) {
      const [n, file] = fail.split('@') as [string, string];
      const runs = existsSync(file) ? readFileSync(file, 'utf8').length : 0;
      appendFileSync(file, 'x');
      if (runs < Number(n)) throw new Error(`transient failure ${runs + 1} of ${n}`);
    }
    if (word(p, 'bad') !== undefined) throw new BadRequestError('the fake engine refuses "bad" prompts');
    if (word(p, 'noop') === undefined) {
      const total = request.steps ?? 4;
      const stepMs = Number(word(p, 'step') ?? 20);
      const busy = word(p, 'busy') !== undefined;
      for (let i = 1; i <= total; i++) {
        if (hooks.signal?.aborted) throw new CancelledError('cancelled');
        if (word(p, 'crash') !== undefined && i === Math.ceil(total / 2)) process.exit(3);
        if (busy) {
          const until = Date.now() + stepMs;
          while (Date.now() < until) {
            /* spin: hold the thread like a CPU-bound denoising step */
          }
        } else {
          await sleep(stepMs);
        }
        hooks.onProgress?.({ step: i, total, preview: request.previews ? tinyPng(`preview ${i}`) : undefined });
      }
      if (hooks.signal?.aborted) throw new CancelledError('cancelled');
    }
    const images = Array.from({ length: request.count }, (_, i) => {
      const seed = seedForImage(request.seed, i).toString();
      return { seed, png: tinyPng(`${request.model}|${p}|${seed}`), width: 1, height: 1 };
    });
    const totalMs = Date.now() - t0;
    return { images, notes: [], timings: { loadMs: 0, textMs: 0, denoiseMs: totalMs, unetMs: 0, decodeMs: 0, totalMs } };
  }

  async loadModel(entry: ModelEntry): Promise<void> {
    this.models.set(entry.id, entry);
  }
  async unloadModel(id: string): Promise<void> {
    this.models.delete(id);
  }
  loadedModels(): string[] {
    return [...this.models.keys()];
  }
  async close(): Promise<void> {}
}

export async function createEngine(_options: EngineOptions = {}): Promise<Engine> {
  return new FakeEngine();
}
