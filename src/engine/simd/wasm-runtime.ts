/**
 * Instantiates an assembled kernel module with a memory of its own. Each kernel family (latent loops, randn) owns
 * its memory, so one growing never detaches another's views.
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
 * The module of `functions` on a fresh memory of `pages` 64 KiB pages, its exports typed as E; null where
 * WebAssembly (SIMD) is missing or SDBOT_NO_SIMD=1, so that callers run their JS instead.
 */
export function instantiateKernels<E>(functions: readonly WasmFunction[], pages: number): { memory: WasmMemory; fns: E } | null {
  const api = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
  if (process.env.SDBOT_NO_SIMD === '1' || !api) return null;
  try {
    const memory = new api.Memory({ initial: pages });
    const instance = new api.Instance(new api.Module(assembleModule(functions)), { env: { memory } });
    return { memory, fns: instance.exports as E };
  } catch {
    return null; // no WebAssembly SIMD here
  }
}
