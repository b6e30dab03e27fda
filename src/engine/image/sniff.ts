/**
 * Tells what a file is from its first bytes (never from its name): chat attachments arrive with whatever name and
 * content type the sender's client chose, and a PDF renamed .png must get a clear answer, not a decoder error.
 */

/** Formats the decoder accepts. */
export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'gif' | 'avif' | 'heif';

export type Sniffed =
  | { kind: 'image'; format: ImageFormat }
  /** An image format we refuse (label for the user, e.g. "BMP"). */
  | { kind: 'unsupported-image'; label: string }
  /** Not an image: `what` completes "got …" (e.g. "a PDF"). */
  | { kind: 'other'; what: string };

function ascii(b: Uint8Array, start: number, len: number): string {
  let s = '';
  for (let i = start; i < Math.min(b.length, start + len); i++) s += String.fromCharCode(b[i] as number);
  return s;
}

function startsWith(b: Uint8Array, sig: readonly number[], at = 0): boolean {
  if (b.length < at + sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (b[at + i] !== sig[i]) return false;
  return true;
}

const AVIF_BRANDS = new Set(['avif', 'avis']);
const HEIC_BRANDS = new Set(['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'hevm', 'hevs']);
const HEIF_GENERIC_BRANDS = new Set(['mif1', 'msf1']);
const VIDEO_BRANDS = /^(isom|iso\d|mp4\d|mp41|mp42|avc1|dash|m4v |qt  |3gp\d|3g2\w|M4V |MSNV|f4v )$/;
const AUDIO_BRANDS = /^(M4A |M4B |M4P |F4A )$/;

/** ISO-BMFF (`....ftyp`): AVIF, HEIC, MP4, MOV… told apart by the major and compatible brands. */
function sniffFtyp(b: Uint8Array): Sniffed | null {
  if (ascii(b, 4, 4) !== 'ftyp') return null;
  const boxSize = ((b[0] as number) << 24) | ((b[1] as number) << 16) | ((b[2] as number) << 8) | (b[3] as number);
  const end = Math.min(b.length, boxSize > 16 ? boxSize : 16);
  const brands = [ascii(b, 8, 4)];
  for (let p = 16; p + 4 <= end; p += 4) brands.push(ascii(b, p, 4));
  if (brands.some((x) => AVIF_BRANDS.has(x))) return { kind: 'image', format: 'avif' };
  if (brands.some((x) => HEIC_BRANDS.has(x))) return { kind: 'image', format: 'heif' };
  if (brands.some((x) => HEIF_GENERIC_BRANDS.has(x))) return { kind: 'image', format: 'heif' };
  const major = brands[0] as string;
  if (AUDIO_BRANDS.test(major)) return { kind: 'other', what: 'an audio file' };
  if (VIDEO_BRANDS.test(major) || brands.some((x) => VIDEO_BRANDS.test(x))) return { kind: 'other', what: 'a video' };
  return { kind: 'other', what: 'a media file' };
}

/** Plain text if the start decodes as UTF-8 without control characters other than whitespace. */
function looksLikeText(b: Uint8Array): boolean {
  const head = b.subarray(0, 1024);
  if (head.length === 0) return false;
  let text: string;
  try {
    // A multi-byte character cut at the 1024-byte boundary is not an error: decode in streaming mode.
    text = new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: true });
  } catch {
    return false;
  }
  return !/[\x00-\x08\x0b\x0e-\x1f\x7f]/.test(text);
}

function sniffText(b: Uint8Array): Sniffed | null {
  if (!looksLikeText(b)) return null;
  const start = new TextDecoder().decode(b.subarray(0, 512)).replace(/^\uFEFF/, '').trimStart().toLowerCase();
  if (start.startsWith('<svg') || (start.startsWith('<?xml') && start.includes('<svg'))) {
    return { kind: 'unsupported-image', label: 'SVG' };
  }
  if (start.startsWith('<!doctype html') || start.startsWith('<html')) return { kind: 'other', what: 'a web page' };
  if (start.startsWith('data:image/')) return { kind: 'other', what: 'a data: URL as text' };
  if (/^https?:\/\//.test(start)) return { kind: 'other', what: 'a link as text' };
  if (start.startsWith('{') || start.startsWith('[')) return { kind: 'other', what: 'JSON text' };
  return { kind: 'other', what: 'text' };
}

export function sniffImage(bytes: Uint8Array): Sniffed {
  const b = bytes;
  if (b.length === 0) return { kind: 'other', what: 'an empty file' };
  if (startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { kind: 'image', format: 'png' };
  if (startsWith(b, [0xff, 0xd8, 0xff])) return { kind: 'image', format: 'jpeg' };
  if (ascii(b, 0, 4) === 'RIFF') {
    const sub = ascii(b, 8, 4);
    if (sub === 'WEBP') return { kind: 'image', format: 'webp' };
    if (sub === 'WAVE') return { kind: 'other', what: 'an audio file' };
    if (sub === 'AVI ') return { kind: 'other', what: 'a video' };
  }
  const head6 = ascii(b, 0, 6);
  if (head6 === 'GIF87a' || head6 === 'GIF89a') return { kind: 'image', format: 'gif' };
  const ftyp = sniffFtyp(b);
  if (ftyp) return ftyp;

  if (ascii(b, 0, 5) === '%PDF-') return { kind: 'other', what: 'a PDF' };
  if (startsWith(b, [0x50, 0x4b, 0x03, 0x04]) || startsWith(b, [0x50, 0x4b, 0x05, 0x06])) {
    return { kind: 'other', what: 'a ZIP archive or Office document' };
  }
  if (startsWith(b, [0x1f, 0x8b])) return { kind: 'other', what: 'a gzip archive' };
  if (ascii(b, 0, 4) === 'Rar!') return { kind: 'other', what: 'a RAR archive' };
  if (startsWith(b, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c])) return { kind: 'other', what: 'a 7-Zip archive' };
  if (startsWith(b, [0x1a, 0x45, 0xdf, 0xa3])) return { kind: 'other', what: 'a video' };
  if (ascii(b, 0, 4) === 'OggS' || ascii(b, 0, 4) === 'fLaC' || ascii(b, 0, 3) === 'ID3') {
    return { kind: 'other', what: 'an audio file' };
  }
  if (ascii(b, 0, 2) === 'MZ' || startsWith(b, [0x7f, 0x45, 0x4c, 0x46])) return { kind: 'other', what: 'a program' };

  if (ascii(b, 0, 2) === 'BM' && b.length >= 14) return { kind: 'unsupported-image', label: 'BMP' };
  if (startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a])) {
    return { kind: 'unsupported-image', label: 'TIFF' };
  }
  if (ascii(b, 0, 4) === '8BPS') return { kind: 'unsupported-image', label: 'Photoshop (PSD)' };
  if (startsWith(b, [0x00, 0x00, 0x01, 0x00]) && b.length > 6) return { kind: 'unsupported-image', label: 'ICO' };
  if (startsWith(b, [0xff, 0x0a]) || startsWith(b, [0, 0, 0, 0x0c, 0x4a, 0x58, 0x4c, 0x20])) {
    return { kind: 'unsupported-image', label: 'JPEG XL' };
  }
  if (startsWith(b, [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20])) return { kind: 'unsupported-image', label: 'JPEG 2000' };

  return sniffText(b) ?? { kind: 'other', what: 'an unknown kind of file' };
}

const LABELS: Record<ImageFormat, string> = { png: 'PNG', jpeg: 'JPEG', webp: 'WebP', gif: 'GIF', avif: 'AVIF', heif: 'HEIC/HEIF' };

export function formatLabel(format: ImageFormat): string {
  return LABELS[format];
}
