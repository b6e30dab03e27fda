/**
 * Pillow's `Image.resize` for 8-bit images, reimplemented so images resized here match the PIL images diffusers
 * feeds its VAE and ControlNet (diffusers 0.30.3 `VaeImageProcessor.resize` calls `PIL.Image.resize`).
 *
 * Semantics follow Pillow's libImaging/Resample.c (`ImagingResample`): a separable convolution whose filter support
 * is stretched by the scale when downsampling (antialiasing), coefficients normalised to sum 1 and then quantised to
 * 22-bit fixed point, a horizontal pass into an 8-bit intermediate image, then a vertical pass, each output rounded
 * by adding half and clipped to 0..255. Same-size resizes return a copy, as PIL does.
 */

export type PilFilter = 'box' | 'bilinear' | 'hamming' | 'bicubic' | 'lanczos';

export interface Size {
  width: number;
  height: number;
}

interface Filter {
  support: number;
  weight(x: number): number;
}

// Pillow writes these two constants as C floats (0.54f, 0.46f); the product is then taken in double.
const HAMMING_A = Math.fround(0.54);
const HAMMING_B = Math.fround(0.46);
const BICUBIC_A = -0.5;

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

const FILTERS: Record<PilFilter, Filter> = {
  box: { support: 0.5, weight: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: {
    support: 1,
    weight: (x) => {
      const ax = Math.abs(x);
      return ax < 1 ? 1 - ax : 0;
    },
  },
  hamming: {
    support: 1,
    weight: (x) => {
      const ax = Math.abs(x);
      if (ax === 0) return 1;
      if (ax >= 1) return 0;
      const px = ax * Math.PI;
      return (Math.sin(px) / px) * (HAMMING_A + HAMMING_B * Math.cos(px));
    },
  },
  bicubic: {
    support: 2,
    weight: (x) => {
      const a = BICUBIC_A;
      const ax = Math.abs(x);
      if (ax < 1) return ((a + 2) * ax - (a + 3)) * ax * ax + 1;
      if (ax < 2) return (((ax - 5) * ax + 8) * ax - 4) * a;
      return 0;
    },
  },
  lanczos: { support: 3, weight: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

/** Per output pixel: first source index, tap count, and `ksize` fixed-point weights. */
interface Coefficients {
  ksize: number;
  start: Int32Array;
  count: Int32Array;
  weights: Int32Array;
}

function precomputeCoefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const invScale = 1 / filterScale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero; negative starts are clamped to 0 right after, as in Pillow.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.weight((x + xmin - center + 0.5) * invScale);
      k[x] = w;
      sum += w;
    }
    const base = xx * ksize;
    for (let x = 0; x < xmax; x++) {
      const w = sum !== 0 ? (k[x] as number) / sum : (k[x] as number);
      weights[base + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return { ksize, start, count, weights };
}

function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function resampleHorizontal(
  src: Uint8Array, inW: number, channels: number, rowFirst: number, rows: number, outW: number, c: Coefficients,
): Uint8Array {
  const out = new Uint8Array(outW * rows * channels);
  const { ksize, start, count, weights } = c;
  // Scalar accumulators per channel: the generic per-channel array loop is ~3x slower on RGB.
  for (let y = 0; y < rows; y++) {
    const rowIn = (y + rowFirst) * inW * channels;
    let o = y * outW * channels;
    for (let xx = 0; xx < outW; xx++) {
      const n = count[xx] as number;
      const kBase = xx * ksize;
      let p = rowIn + (start[xx] as number) * channels;
      if (channels === 3) {
        let a0 = HALF;
        let a1 = HALF;
        let a2 = HALF;
        for (let x = 0; x < n; x++, p += 3) {
          const w = weights[kBase + x] as number;
          a0 += (src[p] as number) * w;
          a1 += (src[p + 1] as number) * w;
          a2 += (src[p + 2] as number) * w;
        }
        out[o++] = clip8(a0);
        out[o++] = clip8(a1);
        out[o++] = clip8(a2);
      } else {
        for (let ch = 0; ch < channels; ch++) {
          let a = HALF;
          for (let x = 0, q = p + ch; x < n; x++, q += channels) a += (src[q] as number) * (weights[kBase + x] as number);
          out[o++] = clip8(a);
        }
      }
    }
  }
  return out;
}

function resampleVertical(
  src: Uint8Array, width: number, channels: number, rowOffset: number, outH: number, c: Coefficients,
): Uint8Array {
  const stride = width * channels;
  const out = new Uint8Array(outH * stride);
  const acc = new Int32Array(stride); // sums stay within ±2^31: |Σ weights| < 2^23, pixels < 2^8
  const { ksize, start, count, weights } = c;
  for (let yy = 0; yy < outH; yy++) {
    acc.fill(HALF);
    const n = count[yy] as number;
    const kBase = yy * ksize;
    const first = (start[yy] as number) - rowOffset;
    // Row-at-a-time accumulation: same sums as Pillow's per-pixel loop (integer arithmetic), cache friendly.
    for (let y = 0; y < n; y++) {
      const w = weights[kBase + y] as number;
      const row = (first + y) * stride;
      for (let i = 0; i < stride; i++) acc[i] = (acc[i] as number) + (src[row + i] as number) * w;
    }
    const o = yy * stride;
    for (let i = 0; i < stride; i++) out[o + i] = clip8(acc[i] as number);
  }
  return out;
}

/**
 * Resizes an interleaved 8-bit image (`channels` bytes per pixel, row-major) exactly as Pillow's `Image.resize`
 * does for modes L / RGB / RGBA without premultiplication. Returns a new array; a same-size call copies.
 */
export function resizeU8(
  data: Uint8Array, width: number, height: number, channels: number, to: Size, filter: PilFilter,
): Uint8Array {
  if (data.length !== width * height * channels) {
    throw new RangeError(`resizeU8: expected ${width * height * channels} bytes, got ${data.length}`);
  }
  if (!(to.width >= 1 && to.height >= 1 && Number.isInteger(to.width) && Number.isInteger(to.height))) {
    throw new RangeError(`resizeU8: bad target size ${to.width}x${to.height}`);
  }
  const f = FILTERS[filter];
  const needH = to.width !== width;
  const needV = to.height !== height;
  if (!needH && !needV) return data.slice();
  const vert = precomputeCoefficients(height, to.height, f);
  // Only the source rows the vertical pass reads need the horizontal pass.
  const rowFirst = vert.start[0] as number;
  const rowLast = (vert.start[to.height - 1] as number) + (vert.count[to.height - 1] as number);
  let img = data;
  let rowOffset = 0;
  if (needH) {
    const horiz = precomputeCoefficients(width, to.width, f);
    img = resampleHorizontal(data, width, channels, rowFirst, rowLast - rowFirst, to.width, horiz);
    rowOffset = rowFirst;
  }
  if (!needV) return img;
  return resampleVertical(img, to.width, channels, rowOffset, to.height, vert);
}

/** `resizeU8` for HWC RGB images. */
export function resizeRgb(rgb: Uint8Array, width: number, height: number, to: Size, filter: PilFilter): Uint8Array {
  return resizeU8(rgb, width, height, 3, to, filter);
}

/** `resizeU8` for single-channel (PIL mode "L") images such as masks. */
export function resizeGray(l: Uint8Array, width: number, height: number, to: Size, filter: PilFilter): Uint8Array {
  return resizeU8(l, width, height, 1, to, filter);
}
