/**
 * Reads small float tensors from a .safetensors file (8-byte little-endian header length, a JSON header of
 * {name: {dtype, shape, data_offsets}}, then the raw little-endian data), as float32. For the few non-ONNX weights a
 * folder may carry as diffusers saved them (stable unCLIP's image normalizer).
 */
import { readFileSync } from 'node:fs';
import { fromHalfBits } from './onnx/float16.js';

export interface FloatTensor {
  shape: number[];
  data: Float32Array;
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** The named tensors of the file (all of them when `names` is omitted); throws on a malformed file or dtype. */
export function readSafetensors(path: string, names?: readonly string[]): Map<string, FloatTensor> {
  const bytes = readFileSync(path);
  if (bytes.length < 8) throw new Error('not a safetensors file (too short)');
  const headerLength = Number(bytes.readBigUInt64LE(0));
  if (headerLength > bytes.length - 8) throw new Error('not a safetensors file (header length beyond the file)');
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, HeaderEntry>;
  const base = 8 + headerLength;
  const out = new Map<string, FloatTensor>();
  for (const name of names ?? Object.keys(header).filter((k) => k !== '__metadata__')) {
    const e = header[name];
    if (!e) throw new Error(`no tensor "${name}"`);
    const [begin, end] = e.data_offsets;
    if (base + end > bytes.length || begin > end) throw new Error(`tensor "${name}" lies beyond the file`);
    // Copy out: the slice may not be aligned for a typed-array view.
    const raw = new Uint8Array(bytes.subarray(base + begin, base + end));
    const count = e.shape.reduce((a, b) => a * b, 1);
    const width = e.dtype === 'F32' ? 4 : 2;
    if (raw.length !== count * width) throw new Error(`tensor "${name}": ${raw.length} bytes for ${e.dtype} shape [${e.shape.join(', ')}]`);
    let data: Float32Array;
    switch (e.dtype) {
      case 'F32':
        data = new Float32Array(raw.buffer, 0, count);
        break;
      case 'F16':
        data = fromHalfBits(new Uint16Array(raw.buffer, 0, count));
        break;
      case 'BF16': {
        const bits = new Uint16Array(raw.buffer, 0, count);
        const u32 = new Uint32Array(count);
        for (let i = 0; i < count; i++) u32[i] = bits[i]! << 16;
        data = new Float32Array(u32.buffer);
        break;
      }
      default:
        throw new Error(`tensor "${name}" has dtype ${e.dtype}; only F32, F16 and BF16 are read`);
    }
    out.set(name, { shape: e.shape, data });
  }
  return out;
}
