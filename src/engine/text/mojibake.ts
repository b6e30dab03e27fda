/**
 * ftfy 6.3's `fix_encoding`: undo UTF-8 text that was decoded as a single-byte code page (Latin-1, Windows-125x,
 * ISO-8859-2, MacRoman, CP437), also where a program turned U+00A0 into a space or lost bytes to U+FFFD, repair
 * embedded pieces of such mojibake, and read stray C1 controls as Windows-1252.
 *
 * Byte strings are handled as "binary strings" (one char per byte, U+0000–U+00FF) so the byte-level regexes can run.
 */
import { CODE_PAGES, type CodePageTable } from './code-pages.js';
import { UTF8_CLUE_CLASSES as U } from './mojibake-classes.js';
import { isBad } from './badness.js';
import { fixC1Controls } from './char-fixes.js';

interface CodePage {
  name: string;
  /** char → byte for every character this page (sloppily) encodes, ASCII included. */
  encoder: Map<string, number>;
}

function buildCodePage(table: CodePageTable): CodePage {
  const encoder = new Map<string, number>();
  for (let b = 0; b < 0x80; b++) if (b !== 0x1a) encoder.set(String.fromCharCode(b), b);
  encoder.set(table.sub, 0x1a);
  for (let i = 0; i < 128; i++) encoder.set(table.high[i]!, 0x80 + i);
  return { name: table.name, encoder };
}

let codePages: CodePage[] | undefined;
const getCodePages = (): CodePage[] => (codePages ??= CODE_PAGES.map(buildCodePage));

/** The text as bytes of this code page, or undefined when some character is not in it (ftfy `possible_encoding`). */
function encodeAs(text: string, page: CodePage): string | undefined {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const b = page.encoder.get(text[i]!);
    if (b === undefined) return undefined;
    out += String.fromCharCode(b);
  }
  return out;
}

/** Sequences that would be UTF-8 if a space were the U+00A0 byte (0xA0) it replaced. */
const ALTERED_UTF8_RE = new RegExp(
  [
    '[\\xc2\\xc3\\xc5\\xce\\xd0\\xd9] ',
    '[\\xe2\\xe3] [\\x80-\\x84\\x86-\\x9f\\xa1-\\xbf]',
    '[\\xe0-\\xe3][\\x80-\\x84\\x86-\\x9f\\xa1-\\xbf] ',
    '\\xf0 [\\x80-\\xbf][\\x80-\\xbf]',
    '\\xf0[\\x80-\\xbf] [\\x80-\\xbf]',
    '\\xf0[\\x80-\\xbf][\\x80-\\xbf] ',
  ].join('|'),
  'g',
);
/** "Ã " as a word is mojibake of "à" whose 0xA0 became a space; keep the space (except Portuguese "às", "àquele"…). */
const A_GRAVE_WORD_RE = /\xc3 (?! |quele|quela|quilo|s )/g;

function restoreByteA0(bytes: string): string {
  return bytes.replace(A_GRAVE_WORD_RE, '\xc3\xa0 ').replace(ALTERED_UTF8_RE, (m) => m.replaceAll(' ', '\xa0'));
}

/** UTF-8 sequences whose continuation bytes were lost (byte 0x1A stands for a U+FFFD, '?' for a lost byte once). */
const LOSSY_UTF8_RE = new RegExp(
  [
    '[\\xc2-\\xdf]\\x1a',
    '[\\xc2-\\xc3]\\?',
    '\\xed[\\xa0-\\xaf][\\x1a?]\\xed[\\xb0-\\xbf][\\x1a?\\x80-\\xbf]',
    '\\xed[\\xa0-\\xaf][\\x1a?\\x80-\\xbf]\\xed[\\xb0-\\xbf][\\x1a?]',
    '[\\xe0-\\xef][\\x1a?][\\x1a\\x80-\\xbf]',
    '[\\xe0-\\xef][\\x1a\\x80-\\xbf][\\x1a?]',
    '[\\xf0-\\xf4][\\x1a?][\\x1a\\x80-\\xbf][\\x1a\\x80-\\xbf]',
    '[\\xf0-\\xf4][\\x1a\\x80-\\xbf][\\x1a?][\\x1a\\x80-\\xbf]',
    '[\\xf0-\\xf4][\\x1a\\x80-\\xbf][\\x1a\\x80-\\xbf][\\x1a?]',
    '\\x1a',
  ].join('|'),
  'g',
);

function replaceLossySequences(bytes: string): string {
  return bytes.replace(LOSSY_UTF8_RE, '\xef\xbf\xbd');
}

const inRange = (b: number | undefined, lo: number, hi: number): boolean => b !== undefined && b >= lo && b <= hi;

/**
 * Strict UTF-8 decoding of a binary string (overlongs, surrogates and truncation are errors, as in Python), plus
 * ftfy's "utf-8-variants": Java's C0 80 for U+0000 and CESU-8 surrogate pairs. Returns undefined on an error.
 */
function decodeUtf8(bytes: string, variants: boolean): string | undefined {
  const b = (i: number): number | undefined => (i < bytes.length ? bytes.charCodeAt(i) : undefined);
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b0 = b(i)!;
    if (b0 < 0x80) {
      out += bytes[i];
      i += 1;
      continue;
    }
    if (variants && b0 === 0xc0 && b(i + 1) === 0x80) {
      out += '\0';
      i += 2;
      continue;
    }
    if (
      variants && b0 === 0xed && inRange(b(i + 1), 0xa0, 0xaf) && inRange(b(i + 2), 0x80, 0xbf) &&
      b(i + 3) === 0xed && inRange(b(i + 4), 0xb0, 0xbf) && inRange(b(i + 5), 0x80, 0xbf)
    ) {
      const cp = ((b(i + 1)! & 0x0f) << 16) + ((b(i + 2)! & 0x3f) << 10) + ((b(i + 4)! & 0x0f) << 6) + (b(i + 5)! & 0x3f) + 0x10000;
      out += String.fromCodePoint(cp);
      i += 6;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    let cp: number;
    if (b0 >= 0xc2 && b0 <= 0xdf) { need = 1; cp = b0 & 0x1f; }
    else if (b0 >= 0xe0 && b0 <= 0xef) {
      need = 2; cp = b0 & 0x0f;
      if (b0 === 0xe0) lo = 0xa0;
      if (b0 === 0xed) hi = 0x9f;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      need = 3; cp = b0 & 0x07;
      if (b0 === 0xf0) lo = 0x90;
      if (b0 === 0xf4) hi = 0x8f;
    } else return undefined;
    for (let k = 1; k <= need; k++) {
      const c = b(i + k);
      if (!inRange(c, k === 1 ? lo : 0x80, k === 1 ? hi : 0xbf)) return undefined;
      cp = (cp << 6) | (c! & 0x3f);
    }
    out += String.fromCodePoint(cp);
    i += need + 1;
  }
  return out;
}

const UTF8_DETECTOR_RE = new RegExp(
  `(?<![${U.utf8ContinuationStrict}])(?:[${U.utf8FirstOf2}][${U.utf8Continuation}]|[${U.utf8FirstOf3}][${U.utf8Continuation}]{2}|[${U.utf8FirstOf4}][${U.utf8Continuation}]{3})+`,
  'gu',
);

/** Fix runs that look like UTF-8 mojibake inside text that as a whole is in no single encoding. */
function decodeInconsistentUtf8(text: string): string {
  return text.replace(UTF8_DETECTOR_RE, (sub) => (sub.length < text.length && isBad(sub) ? fixEncoding(sub) : sub));
}

const isAscii = (text: string): boolean => !/[^\x00-\x7f]/.test(text);

/** Strict Windows-1252 has no characters for bytes 81, 8D, 8F, 90 and 9D. */
const WINDOWS_1252_UNDEFINED = /[\x81\x8d\x8f\x90\x9d]/;

function fixEncodingOneStep(text: string): string {
  if (text.length === 0 || isAscii(text) || !isBad(text)) return text;
  const possible: string[] = [];
  for (const page of getCodePages()) {
    let bytes = encodeAs(text, page);
    if (bytes === undefined) continue;
    possible.push(page.name);
    if (page.name !== 'macroman' && ALTERED_UTF8_RE.test(bytes)) bytes = restoreByteA0(bytes);
    ALTERED_UTF8_RE.lastIndex = 0;
    if (page.name.startsWith('sloppy')) bytes = replaceLossySequences(bytes);
    const fixed = decodeUtf8(bytes, /[\xed\xc0]/.test(bytes));
    if (fixed !== undefined) return fixed;
  }
  UTF8_DETECTOR_RE.lastIndex = 0;
  if (UTF8_DETECTOR_RE.test(text)) {
    UTF8_DETECTOR_RE.lastIndex = 0;
    const fixed = decodeInconsistentUtf8(text);
    if (fixed !== text) return fixed;
  }
  UTF8_DETECTOR_RE.lastIndex = 0;
  // Latin-1 characters outside Windows-1252 are C1 controls: read the whole text as Windows-1252 if that works.
  // (ftfy's guard for text that is both Latin-1 and Windows-1252 compares against a name it never records.)
  if (possible.includes('latin-1') && !WINDOWS_1252_UNDEFINED.test(text)) {
    const fixed = fixC1Controls(text);
    if (fixed !== text) return fixed;
  }
  if (/[\x80-\x9f]/.test(text)) return fixC1Controls(text);
  return text;
}

/** Repeat single repair steps until the text stops changing (ftfy `fix_encoding`). */
export function fixEncoding(text: string): string {
  for (;;) {
    const next = fixEncodingOneStep(text);
    if (next === text) return text;
    text = next;
  }
}
