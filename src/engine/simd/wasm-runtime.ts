/**
 * Instantiates assembled kernel modules, each instance with a memory of its own: one growing never detaches
 * another's views.
 */
import { assembleModule, type WasmFunction } from './wasm-encoding.js';

/** The part of the WebAssembly JS API used here: the project's lib settings (ES2023, node) carry no types for it. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Memory: new (descriptor: { initial: number }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: object };
}

/**
 * Compiles the module of `functions` once and returns a maker of instances, each on a fresh memory of `pages`
 * 64 KiB pages with its exports typed as E; null where WebAssembly (SIMD) is missing or SDBOT_NO_SIMD=1, so that
 * callers run their JS instead.
 */
export function kernelFactory<E>(functions: readonly WasmFunction[]): ((pages: number) => { memory: WasmMemory; fns: E }) | null {
  const api = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
  if (process.env.SDBOT_NO_SIMD === '1' || !api) return null;
  let module: object;
  try {
    module = new api.Module(assembleModule(functions));
  } catch {
    return null; // no WebAssembly SIMD here
  }
  return (pages) => {
    const memory = new api.Memory({ initial: pages });
    const instance = new api.Instance(module, { env: { memory } });
    return { memory, fns: instance.exports as E };
  };
}

/** One instance of `functions` on a memory of `pages` pages (see kernelFactory); null without WebAssembly SIMD. */
export function instantiateKernels<E>(functions: readonly WasmFunction[], pages: number): { memory: WasmMemory; fns: E } | null {
  return kernelFactory<E>(functions)?.(pages) ?? null;
}
