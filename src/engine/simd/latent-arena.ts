/**
 * Where the latent kernels run and where their operands live.
 *
 * A kernel reads and writes wasm memory only, so an operand held in an ordinary Float32Array is copied in and a
 * result copied out. Between two model runs the latents are cold in the caches (the run, or the GPU wait, has
 * evicted them), and there the copies are most of a pass's cost: a two-term update of SD1.5 latents right after a
 * model run takes 65–80 µs on operands already in wasm memory and 105–125 µs with the copies (bench:engine). So a
 * denoising loop runs inside a latent arena (`withLatentArena`): a wasm memory of its own with its own kernel
 * instance, from which the loop and the samplers take their latent-sized buffers (`latentBuffer`). A kernel whose operands live there works on them in
 * place; only what comes from elsewhere (the model's output, noise from the worker ring) is copied, into the
 * arena's scratch slots.
 *
 * An arena's memory never grows (it is sized for the loop up front), so its views stay valid as long as anything
 * holds them; when it is full, `latentBuffer` hands out ordinary arrays, which work the same, with copies. Kernels
 * outside any arena run on a shared instance whose memory grows as needed and holds no one's views.
 */
import { latentKernelFunctions, MAX_TERMS } from './latent-kernel-code.js';
import { kernelFactory, type WasmMemory } from './wasm-runtime.js';

type Kernel = (...args: number[]) => void;

interface Instance {
  memory: WasmMemory;
  fns: Record<string, Kernel>;
  heap: Float32Array;
}

interface Arena {
  instance: Instance;
  /** the largest operand the scratch slots take, in floats */
  numel: number;
  /** next free byte, and where the buffers end and the scratch slots begin */
  used: number;
  end: number;
}

/** Operands one kernel call has at most: a five-term combination's five inputs and its output. */
const MAX_OPERANDS = MAX_TERMS + 1;
const PAGE = 65536;

const makeInstance = kernelFactory<Record<string, Kernel>>(latentKernelFunctions());

function instance(pages: number): Instance {
  const { memory, fns } = makeInstance!(pages);
  return { memory, fns, heap: new Float32Array(memory.buffer) };
}

const shared = makeInstance ? instance(1) : null;
const arenas = new WeakMap<ArrayBufferLike, Arena>();
let current: Arena | null = null;

/** Whether the kernels run as WebAssembly SIMD (false: the callers' JS loops run). */
export const simdAvailable = shared !== null;

/** Bytes of n floats in whole 4-float groups: kernels have no tail loop, they write the last group whole. */
export function slotBytes(n: number): number {
  return Math.ceil(n / 4) * 16;
}

/**
 * Runs `loop` with a fresh arena holding `buffers` buffers of `numel` floats (and scratch slots for operands of up
 * to `numel` floats): latentBuffer calls during it take their memory from there.
 */
export async function withLatentArena<T>(numel: number, buffers: number, loop: () => Promise<T>): Promise<T> {
  if (!makeInstance) return loop();
  const stride = slotBytes(numel);
  const end = buffers * stride;
  let made: Instance;
  try {
    made = instance(Math.ceil((end + MAX_OPERANDS * stride) / PAGE));
  } catch {
    return loop(); // no memory for an arena (address space, or a huge batch): ordinary arrays work the same
  }
  const arena: Arena = { instance: made, numel, used: 0, end };
  arenas.set(arena.instance.memory.buffer, arena);
  const outer = current;
  current = arena;
  try {
    return await loop();
  } finally {
    current = outer;
  }
}

/** A zeroed buffer of n floats: from the current arena while it has room, else an ordinary array. */
export function latentBuffer(n: number): Float32Array {
  const a = current;
  const bytes = slotBytes(n);
  if (!a || a.used + bytes > a.end) return new Float32Array(n);
  const view = new Float32Array(a.instance.memory.buffer, a.used, n);
  a.used += bytes;
  return view;
}

/**
 * One kernel call over n floats: it runs on the arena of the first operand that lives in one (when its scratch
 * slots are large enough), else on the shared instance. `input`/`output` give an operand's byte address there,
 * copying it into a scratch slot when it lives elsewhere; `run` calls the kernel and copies results back.
 */
export class KernelCall {
  private readonly instance: Instance;
  private readonly stride: number;
  private nextSlot: number;
  private readonly copyBack: [Float32Array, number][] = [];
  /** byte ranges of the inputs used in place */
  private readonly inPlace: [number, number][] = [];

  constructor(private readonly n: number, operands: readonly Float32Array[]) {
    if (operands.length > MAX_OPERANDS) throw new Error(`KernelCall: ${operands.length} operands`);
    this.stride = slotBytes(n);
    let arena: Arena | undefined;
    for (const o of operands) {
      const a = arenas.get(o.buffer);
      if (a && n <= a.numel) {
        arena = a;
        break;
      }
    }
    if (arena) {
      this.instance = arena.instance;
      this.nextSlot = arena.end;
    } else {
      this.instance = shared!;
      this.nextSlot = 0;
      const need = operands.length * this.stride;
      const memory = shared!.memory;
      if (memory.buffer.byteLength < need) memory.grow(Math.ceil((need - memory.buffer.byteLength) / PAGE));
      if (shared!.heap.buffer !== memory.buffer) shared!.heap = new Float32Array(memory.buffer);
    }
  }

  /** The kernels' `end` argument: the byte length they walk. */
  get end(): number {
    return this.stride;
  }

  input(a: Float32Array): number {
    if (a.buffer === this.instance.memory.buffer) {
      this.inPlace.push([a.byteOffset, a.byteOffset + a.byteLength]);
      return a.byteOffset;
    }
    const at = this.slot();
    this.instance.heap.set(a, at / 4);
    return at;
  }

  /**
   * Call after every input. In place when the kernel's whole last group lies inside `a` and `a` overlaps no input
   * used in place (a kernel may store one output before reading its inputs again); else through a scratch slot.
   */
  output(a: Float32Array): number {
    const from = a.byteOffset;
    const to = from + a.byteLength;
    const clear = this.inPlace.every(([lo, hi]) => to <= lo || hi <= from);
    if (a.buffer === this.instance.memory.buffer && a.length % 4 === 0 && clear) return from;
    const at = this.slot();
    this.copyBack.push([a, at]);
    return at;
  }

  run(kernel: string, ...args: number[]): void {
    this.instance.fns[kernel]!(...args);
    const heap = this.instance.heap;
    for (const [a, at] of this.copyBack) a.set(heap.subarray(at / 4, at / 4 + a.length));
  }

  private slot(): number {
    const at = this.nextSlot;
    this.nextSlot += this.stride;
    return at;
  }
}
