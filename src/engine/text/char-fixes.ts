/**
 * ftfy's character-level fixers (the ones fix_text runs after the encoding repair): C1 controls as Windows-1252,
 * Latin ligatures, full/halfwidth forms, curly quotes, line breaks, unpaired surrogates, terminal escapes and
 * invisible control characters.
 */
import { CODE_PAGES } from './code-pages.js';

const WINDOWS_1252_HIGH = CODE_PAGES.find((p) => p.name === 'sloppy-windows-1252')!.high;

/** C1 controls (U+0080–U+009F) read as the Windows-1252 characters they almost always stood for. */
export function fixC1Controls(text: string): string {
  return text.replace(/[\x80-\x9f]/g, (c) => WINDOWS_1252_HIGH[c.charCodeAt(0) - 0x80]!);
}

const LIGATURES: Record<string, string> = {
  'Ĳ': 'IJ', 'ĳ': 'ij', 'ŉ': 'ʼn',
  'Ǳ': 'DZ', 'ǲ': 'Dz', 'ǳ': 'dz', 'Ǆ': 'DŽ', 'ǅ': 'Dž', 'ǆ': 'dž',
  'Ǉ': 'LJ', 'ǈ': 'Lj', 'ǉ': 'lj', 'Ǌ': 'NJ', 'ǋ': 'Nj', 'ǌ': 'nj',
  'ﬀ': 'ff', 'ﬁ': 'fi', 'ﬂ': 'fl', 'ﬃ': 'ffi', 'ﬄ': 'ffl', 'ﬅ': 'ſt', 'ﬆ': 'st',
};
const LIGATURE_RE = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'g');

export function fixLatinLigatures(text: string): string {
  return text.replace(LIGATURE_RE, (c) => LIGATURES[c]!);
}

let widthMap: Map<string, string> | undefined;

/** U+3000 and every U+FF01–U+FFEF form whose NFKC differs: fullwidth ASCII, halfwidth katakana / hangul. */
function getWidthMap(): Map<string, string> {
  if (widthMap) return widthMap;
  widthMap = new Map([['\u3000', ' ']]);
  for (let cp = 0xff01; cp < 0xfff0; cp++) {
    const c = String.fromCharCode(cp);
    const alt = c.normalize('NFKC');
    if (alt !== c) widthMap.set(c, alt);
  }
  return widthMap;
}

export function fixCharacterWidth(text: string): string {
  if (!/[\u3000\uff01-\uffef]/.test(text)) return text;
  const map = getWidthMap();
  return text.replace(/[\u3000\uff01-\uffef]/g, (c) => map.get(c) ?? c);
}

export function uncurlQuotes(text: string): string {
  return text.replace(/[\u201c-\u201f]/g, '"').replace(/[\u02bc\u2018-\u201b]/g, "'");
}

export function fixLineBreaks(text: string): string {
  return text.replace(/\r\n|[\r\u2028\u2029\u0085]/g, '\n');
}

/** A JS string holds surrogate pairs as one character already; only unpaired halves remain to replace. */
export function fixSurrogates(text: string): string {
  return text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

export function removeTerminalEscapes(text: string): string {
  // Python's \d in a str pattern is any decimal digit, not just ASCII.
  return text.replace(/\x1b\[(?:\p{Nd}|;)*[a-zA-Z]/gu, '');
}

/** ASCII controls other than whitespace, deprecated Arabic format controls, BOM, interlinear annotation, U+FFFC. */
export function removeControlChars(text: string): string {
  return text.replace(/[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g, '');
}
