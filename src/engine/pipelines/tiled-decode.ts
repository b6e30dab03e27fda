/**
 * VAE decoding in overlapping tiles, blended linearly across the seams, as diffusers' AutoencoderKL.tiled_decode does
 * (tile overlap factor 0.25), so a 2048² decode fits in the memory a 512² one needs. Used only above a size where a
 * whole decode would not fit; below it `vaeDecode` runs the graph once.
 */
import type { ModelGraph } from '../onnx/session.js';
import type { Tensor } from '../tensor.js';

export interface TileOptions {
  /** Tile side in latent pixels. */
  tileLatent: number;
  /** Output pixels per latent pixel (the VAE's scale factor). */
  scale: number;
}

function crop(t: Tensor, y0: number, x0: number, h: number, w: number): Tensor {
  const [n, c, H, W] = t.dims as [number, number, number, number];
  const hh = Math.min(h, H - y0);
  const ww = Math.min(w, W - x0);
  const out = new Float32Array(n * c * hh * ww);
  for (let p = 0; p < n * c; p++) {
    for (let y = 0; y < hh; y++) out.set(t.data.subarray(p * H * W + (y0 + y) * W + x0, p * H * W + (y0 + y) * W + x0 + ww), (p * hh + y) * ww);
  }
  return { data: out, dims: [n, c, hh, ww] };
}

/** b's first `extent` rows fade in over a's last `extent` rows (blend_v); blend_h is the same on columns. */
function blend(a: Tensor, b: Tensor, extent: number, axis: 'v' | 'h'): void {
  const [n, c, ha, wa] = a.dims as [number, number, number, number];
  const [, , hb, wb] = b.dims as [number, number, number, number];
  const e = Math.min(extent, axis === 'v' ? Math.min(ha, hb) : Math.min(wa, wb));
  for (let p = 0; p < n * c; p++) {
    for (let k = 0; k < e; k++) {
      const wgt = k / e;
      if (axis === 'v') {
        for (let x = 0; x < Math.min(wa, wb); x++) {
          const bi = p * hb * wb + k * wb + x;
          b.data[bi] = a.data[p * ha * wa + (ha - e + k) * wa + x]! * (1 - wgt) + b.data[bi]! * wgt;
        }
      } else {
        for (let y = 0; y < Math.min(ha, hb); y++) {
          const bi = p * hb * wb + y * wb + k;
          b.data[bi] = a.data[p * ha * wa + y * wa + (wa - e + k)]! * (1 - wgt) + b.data[bi]! * wgt;
        }
      }
    }
  }
}

export async function tiledDecode(vae: ModelGraph, latents: Tensor, o: TileOptions): Promise<Tensor> {
  const [n, , H, W] = latents.dims as [number, number, number, number];
  const stride = Math.floor(o.tileLatent * 0.75);
  const tilePx = o.tileLatent * o.scale;
  const blendExtent = Math.floor(tilePx * 0.25);
  const rowLimit = tilePx - blendExtent;
  const rows: Tensor[][] = [];
  for (let i = 0; i < H; i += stride) {
    const row: Tensor[] = [];
    for (let j = 0; j < W; j += stride) {
      const out = await vae.run({ latent_sample: crop(latents, i, j, o.tileLatent, o.tileLatent) });
      const s = out['sample']!;
      row.push({ data: s.data, dims: s.dims });
    }
    rows.push(row);
  }
  const outH = H * o.scale;
  const outW = W * o.scale;
  const channels = rows[0]![0]!.dims[1]!;
  const result = new Float32Array(n * channels * outH * outW);
  rows.forEach((row, ri) => {
    row.forEach((tile, ci) => {
      if (ri > 0) blend(rows[ri - 1]![ci]!, tile, blendExtent, 'v');
      if (ci > 0) blend(row[ci - 1]!, tile, blendExtent, 'h');
      const part = crop(tile, 0, 0, rowLimit, rowLimit);
      const [, , ph, pw] = part.dims as [number, number, number, number];
      const y0 = ri * rowLimit;
      const x0 = ci * rowLimit;
      for (let p = 0; p < n * channels; p++) {
        for (let y = 0; y < ph && y0 + y < outH; y++) {
          const w = Math.min(pw, outW - x0);
          if (w > 0) result.set(part.data.subarray((p * ph + y) * pw, (p * ph + y) * pw + w), p * outH * outW + (y0 + y) * outW + x0);
        }
      }
    });
  });
  return { data: result, dims: [n, channels, outH, outW] };
}
