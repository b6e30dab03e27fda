/**
 * PNG text chunks, written the way Pillow's `PngInfo.add_text` writes them (what AUTOMATIC1111 uses for the
 * `parameters` chunk): tEXt with Latin-1 text when every character fits Latin-1, otherwise an uncompressed iTXt with
 * UTF-8 text. Chunks go right after IHDR, ahead of the image data, where readers that stop at IDAT (sharp's
 * `metadata().comments`, browsers' quick parsers) still see them.
 *
 * meta-png is not used for this: it writes UTF-8 bytes into tEXt (which is Latin-1 by the PNG spec) and reads tEXt
 * only, so "café" or "猫" would not round-trip.
 */
import { crc32, inflateSync } from 'node:zlib';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] as const;

export interface PngTextEntry {
  keyword: string;
  text: string;
}

function isPng(b: Uint8Array): boolean {
  return b.length >= 8 && SIGNATURE.every((v, i) => b[i] === v);
}

function isLatin1(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

function latin1Bytes(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'latin1'));
}

/** One PNG chunk: length, type, data, CRC-32 of type and data. */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(latin1Bytes(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The tEXt or iTXt chunk for one keyword/text pair (keyword: 1–79 Latin-1 characters, as the PNG spec requires). */
export function textChunk(keyword: string, text: string): Uint8Array {
  if (keyword.length < 1 || keyword.length > 79 || !isLatin1(keyword) || keyword.includes('\0')) {
    throw new RangeError(`PNG text keyword must be 1-79 Latin-1 characters: ${JSON.stringify(keyword)}`);
  }
  const key = latin1Bytes(keyword);
  if (isLatin1(text)) return pngChunk('tEXt', concat([key, new Uint8Array([0]), latin1Bytes(text)]));
  // keyword \0, compression flag 0, method 0, empty language tag \0, empty translated keyword \0, UTF-8 text
  const header = new Uint8Array([0, 0, 0, 0, 0]);
  return pngChunk('iTXt', concat([key, header, new TextEncoder().encode(text)]));
}

/** Returns a copy of `png` with the text chunks inserted after IHDR. */
export function addPngText(png: Uint8Array, entries: readonly PngTextEntry[]): Uint8Array {
  if (!isPng(png)) throw new TypeError('addPngText: not a PNG');
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const ihdrEnd = 8 + 12 + view.getUint32(8);
  return concat([png.subarray(0, ihdrEnd), ...entries.map((e) => textChunk(e.keyword, e.text)), png.subarray(ihdrEnd)]);
}

function decodeTextChunk(type: string, data: Uint8Array): PngTextEntry | null {
  const nul = data.indexOf(0);
  if (nul < 1) return null;
  const keyword = Buffer.from(data.subarray(0, nul)).toString('latin1');
  const rest = data.subarray(nul + 1);
  try {
    if (type === 'tEXt') return { keyword, text: Buffer.from(rest).toString('latin1') };
    if (type === 'zTXt') return { keyword, text: Buffer.from(inflateSync(rest.subarray(1))).toString('latin1') };
    // iTXt: flag, method, language \0, translated keyword \0, text
    const compressed = rest[0] === 1;
    const langEnd = rest.indexOf(0, 2);
    const tkeyEnd = langEnd < 0 ? -1 : rest.indexOf(0, langEnd + 1);
    if (tkeyEnd < 0) return null;
    const body = rest.subarray(tkeyEnd + 1);
    return { keyword, text: new TextDecoder().decode(compressed ? inflateSync(body) : body) };
  } catch {
    return null; // a damaged text chunk is skipped, not fatal
  }
}

/** All tEXt / zTXt / iTXt entries of a PNG, in file order. Non-PNG input gives an empty list. */
export function readPngText(png: Uint8Array): PngTextEntry[] {
  if (!isPng(png)) return [];
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const entries: PngTextEntry[] = [];
  for (let p = 8; p + 12 <= png.length; ) {
    const len = view.getUint32(p);
    const type = Buffer.from(png.subarray(p + 4, p + 8)).toString('latin1');
    if (p + 12 + len > png.length || type === 'IEND') break;
    if (type === 'tEXt' || type === 'zTXt' || type === 'iTXt') {
      const entry = decodeTextChunk(type, png.subarray(p + 8, p + 8 + len));
      if (entry) entries.push(entry);
    }
    p += 12 + len;
  }
  return entries;
}

/** The AUTOMATIC1111 `parameters` text of a PNG, or null when it has none. */
export function readPngParameters(png: Uint8Array): string | null {
  return readPngText(png).find((e) => e.keyword === 'parameters')?.text ?? null;
}
