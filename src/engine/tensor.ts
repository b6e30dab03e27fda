/**
 * The few NCHW tensor operations the pipelines need, on flat Float32Arrays. Batches are concatenated along axis 0,
 * which for row-major data is plain array concatenation.
 */

export interface Tensor {
  data: Float32Array;
  /** [N, C, H, W] (or [N, S, D] for text embeddings). */
  dims: readonly number[];
}

export function numel(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Concatenate along axis 0. */
export function catBatch(parts: readonly Tensor[]): Tensor {
  const first = parts[0];
  if (!first) throw new Error('catBatch of nothing');
  const out = new Float32Array(parts.reduce((n, p) => n + p.data.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p.data, off);
    off += p.data.length;
  }
  return { data: out, dims: [parts.reduce((n, p) => n + p.dims[0]!, 0), ...first.dims.slice(1)] };
}

/** Repeat a batch `times` times along axis 0 ([a, b] × 2 = [a, b, a, b], as torch.cat([x] * k)). */
export function repeatBatch(t: Tensor, times: number): Tensor {
  return catBatch(Array.from({ length: times }, () => t));
}

/** repeat_interleave along axis 0 ([a, b] × 2 = [a, a, b, b]). */
export function repeatInterleave(t: Tensor, times: number): Tensor {
  const per = t.data.length / t.dims[0]!;
  const out = new Float32Array(t.data.length * times);
  for (let b = 0; b < t.dims[0]!; b++) {
    const src = t.data.subarray(b * per, (b + 1) * per);
    for (let k = 0; k < times; k++) out.set(src, (b * times + k) * per);
  }
  return { data: out, dims: [t.dims[0]! * times, ...t.dims.slice(1)] };
}

/** Concatenate along axis 1 (channels), e.g. the inpaint UNet's latents ‖ mask ‖ masked-image latents. */
export function catChannels(parts: readonly Tensor[]): Tensor {
  const first = parts[0];
  if (!first) throw new Error('catChannels of nothing');
  const n = first.dims[0]!;
  const spatial = numel(first.dims.slice(2));
  const channels = parts.map((p) => p.dims[1]!);
  const totalC = channels.reduce((a, b) => a + b, 0);
  const out = new Float32Array(n * totalC * spatial);
  for (let b = 0; b < n; b++) {
    let c0 = 0;
    for (const p of parts) {
      const c = p.dims[1]!;
      out.set(p.data.subarray(b * c * spatial, (b + 1) * c * spatial), (b * totalC + c0) * spatial);
      c0 += c;
    }
  }
  return { data: out, dims: [n, totalC, ...first.dims.slice(2)] };
}

/** Rows [start, start + count) of axis 0. */
export function sliceBatch(t: Tensor, start: number, count: number): Tensor {
  const per = t.data.length / t.dims[0]!;
  return { data: t.data.subarray(start * per, (start + count) * per), dims: [count, ...t.dims.slice(1)] };
}

/** Rows [start, start + count) of every tensor in a feed (the chunk of a model batch one run takes). */
export function sliceFeeds(feeds: Readonly<Record<string, Tensor>>, start: number, count: number): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, sliceBatch(v, start, count)]));
}

/** In float32, as torch does elementwise: out = a * s. */
export function scale(data: Float32Array, s: number): Float32Array {
  const out = new Float32Array(data.length);
  const fs = Math.fround(s);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! * fs;
  return out;
}

/** Concatenate [B, S, D1] and [B, S, D2] on the last axis (text features of two encoders side by side). */
export function concatLastDim(a: Tensor, b: Tensor): Tensor {
  const [n, seq, d1] = a.dims as [number, number, number];
  const d2 = b.dims[2]!;
  const out = new Float32Array(n * seq * (d1 + d2));
  for (let r = 0; r < n * seq; r++) {
    out.set(a.data.subarray(r * d1, (r + 1) * d1), r * (d1 + d2));
    out.set(b.data.subarray(r * d2, (r + 1) * d2), r * (d1 + d2) + d1);
  }
  return { data: out, dims: [n, seq, d1 + d2] };
}
