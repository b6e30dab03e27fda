/**
 * Canny edges for ControlNet conditioning, as the ControlNet annotators call OpenCV's `cv2.Canny(img, low, high)`:
 * 3×3 Sobel gradients (on each colour channel, keeping the strongest, as OpenCV does for colour input), L1 magnitude,
 * non-maximum suppression along the quantised gradient direction, hysteresis between the two thresholds. The result
 * is white edges on black, as an RGB image the control pipeline takes.
 */
import type { RgbImage } from './types.js';

export function cannyEdges(img: RgbImage, low = 100, high = 200): RgbImage {
  const { width: w, height: h, rgb } = img;
  const gx = new Float32Array(w * h);
  const gy = new Float32Array(w * h);
  const mag = new Float32Array(w * h);
  // Border pixels replicate their neighbours (OpenCV's BORDER_REPLICATE).
  const px = (x: number, y: number, c: number) => rgb[(Math.min(h - 1, Math.max(0, y)) * w + Math.min(w - 1, Math.max(0, x))) * 3 + c]!;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let best = -1;
      for (let c = 0; c < 3; c++) {
        const dx = px(x + 1, y - 1, c) + 2 * px(x + 1, y, c) + px(x + 1, y + 1, c) - px(x - 1, y - 1, c) - 2 * px(x - 1, y, c) - px(x - 1, y + 1, c);
        const dy = px(x - 1, y + 1, c) + 2 * px(x, y + 1, c) + px(x + 1, y + 1, c) - px(x - 1, y - 1, c) - 2 * px(x, y - 1, c) - px(x + 1, y - 1, c);
        const m = Math.abs(dx) + Math.abs(dy);
        if (m > best) {
          best = m;
          gx[y * w + x] = dx;
          gy[y * w + x] = dy;
        }
      }
      mag[y * w + x] = best;
    }
  }
  // Non-maximum suppression: 0° / 45° / 90° / 135° neighbours (tan 22.5° ≈ 0.4142).
  const STRONG = 2;
  const WEAK = 1;
  const mark = new Uint8Array(w * h);
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      const i = y * w + x;
      const m = mag[i]!;
      if (m <= low) continue;
      const ax = Math.abs(gx[i]!);
      const ay = Math.abs(gy[i]!);
      let a: number;
      let b: number;
      if (ay <= ax * 0.4142135) {
        a = mag[i - 1]!;
        b = mag[i + 1]!;
      } else if (ay >= ax * 2.4142135) {
        a = mag[i - w]!;
        b = mag[i + w]!;
      } else {
        const s = gx[i]! * gy[i]! < 0 ? -1 : 1;
        a = mag[i - w - s]!;
        b = mag[i + w + s]!;
      }
      if (m > a && m >= b) mark[i] = m > high ? STRONG : WEAK;
    }
  }
  // Hysteresis: weak pixels survive when 8-connected to a strong one.
  const out = new Uint8Array(w * h * 3);
  const stack: number[] = [];
  for (let i = 0; i < w * h; i++) if (mark[i] === STRONG) stack.push(i);
  const keep = new Uint8Array(w * h);
  while (stack.length) {
    const i = stack.pop()!;
    if (keep[i]) continue;
    keep[i] = 1;
    const x = i % w;
    const y = (i - x) / w;
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        const xx = x + dx;
        const yy = y + dy;
        if (xx < 0 || yy < 0 || xx >= w || yy >= h) continue;
        const j = yy * w + xx;
        if (!keep[j] && mark[j] !== 0) stack.push(j);
      }
    }
  }
  for (let i = 0; i < w * h; i++) if (keep[i]) out.fill(255, i * 3, i * 3 + 3);
  return { width: w, height: h, rgb: out };
}
