/**
 * ftfy 6.3's mojibake heuristic: a text is "bad" when it holds an unlikely juxtaposition of the few hundred
 * characters that UTF-8 mojibake is made of (e.g. an accented capital followed by a currency sign).
 * The alternatives mirror ftfy's BADNESS_RE one for one; the character sets are generated in mojibake-classes.ts.
 */
import { MOJIBAKE_CLASSES as C } from './mojibake-classes.js';

/** Python `re`'s `\s` on str: str.isspace() characters (includes U+001C–U+001F, excludes U+FEFF). */
export const PY_RE_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
/** Python `re`'s `\w` on str: alphanumeric (letters and numbers of any script) or underscore. */
const PY_RE_WORD = '\\p{L}\\p{N}_';

const anyOf = (...sets: string[]): string => `[${sets.join('')}]`;

const ARABIC_1252 = anyOf(C.common, C.currency, C.bad, C.numeric, C.startPunctuation, 'ŸŠ®°µ»');

const ALTERNATIVES: string[] = [
  anyOf(C.c1),
  anyOf(C.bad, C.lowerAccented, C.upperAccented, C.box, C.startPunctuation, C.endPunctuation, C.currency, C.numeric, C.law) + anyOf(C.bad),
  '[a-zA-Z]' + anyOf(C.lowerCommon, C.upperCommon) + anyOf(C.bad),
  anyOf(C.bad) + anyOf(C.lowerAccented, C.upperAccented, C.box, C.startPunctuation, C.endPunctuation, C.currency, C.numeric, C.law),
  anyOf(C.lowerAccented, C.lowerCommon, C.box, C.endPunctuation, C.currency, C.numeric) + anyOf(C.upperAccented),
  anyOf(C.box, C.endPunctuation, C.currency, C.numeric) + anyOf(C.lowerAccented),
  anyOf(C.lowerAccented, C.box, C.endPunctuation) + anyOf(C.currency),
  anyOf(PY_RE_SPACE) + anyOf(C.upperAccented) + anyOf(C.currency),
  anyOf(C.upperAccented, C.box) + anyOf(C.numeric, C.law),
  anyOf(C.lowerAccented, C.upperAccented, C.box, C.currency, C.endPunctuation) + anyOf(C.startPunctuation) + anyOf(C.numeric),
  anyOf(C.lowerAccented, C.upperAccented, C.currency, C.numeric, C.box, C.law) + anyOf(C.endPunctuation) + anyOf(C.startPunctuation),
  anyOf(C.currency, C.numeric, C.box) + anyOf(C.startPunctuation),
  '[a-z]' + anyOf(C.upperAccented) + anyOf(C.startPunctuation, C.currency),
  anyOf(C.box) + anyOf(C.kaomoji),
  anyOf(C.lowerAccented, C.upperAccented, C.currency, C.numeric, C.startPunctuation, C.endPunctuation, C.law) + anyOf(C.box),
  anyOf(C.box) + anyOf(C.endPunctuation),
  anyOf(C.lowerAccented, C.upperAccented) + anyOf(C.startPunctuation, C.endPunctuation) + anyOf(PY_RE_WORD),
  // œ not followed by an unaccented Latin letter
  '[Œœ][^A-Za-z]',
  // degree sign after an accented capital
  anyOf(C.upperAccented) + '°',
  // common two-character Windows-1252 mojibake not caught above
  anyOf('ÂÃÎÐ') + anyOf('€œŠš¢£Ÿž\\xa0\\xad®©°·»', C.startPunctuation, C.endPunctuation, '–—´'),
  '×[²³]',
  // Windows-1252 mojibake of Arabic: four characters, since the 'common' ones are allowed
  '[ØÙ]' + ARABIC_1252 + '[ØÙ]' + ARABIC_1252,
  // starts of three-byte South Asian sequences
  'à[²µ¹¼½¾]',
  // MacRoman mojibake
  '√[±∂†≠®™´≤≥¥µø]',
  '≈[°¢]',
  '‚Ä[ìîïòôúùû†°¢π]',
  '‚[âó][àä°ê]',
  // Windows-1251 mojibake of U+2000-range characters
  'вЂ',
  // Windows-1251 mojibake of Latin-1 / Cyrillic: needs three characters
  '[ВГРС]' + anyOf(C.c1, C.bad, C.startPunctuation, C.endPunctuation, C.currency, '°µ') + '[ВГРС]',
  'ГўВЂВ[^\\n][A-Za-z ]',
  // Windows-1252 encodings of à, á and U+00A0
  'Ã[\\xa0¡]',
  '[a-z][' + PY_RE_SPACE + ']?[ÃÂ][ ]',
  '^[ÃÂ][ ]',
  // Â before the character it was the UTF-8 lead byte of
  anyOf('a-z.,?!', C.endPunctuation) + 'Â' + anyOf(' ', C.startPunctuation, C.endPunctuation),
  // Windows-1253 mojibake
  'β€[™\\xa0Ά\\xad®°]',
  '[ΒΓΞΟ]' + anyOf(C.c1, C.bad, C.startPunctuation, C.endPunctuation, C.currency, '°') + '[ΒΓΞΟ]',
  // Windows-1257 mojibake of U+2000-range characters
  'ā€',
];

const BADNESS_RE = new RegExp(ALTERNATIVES.join('|'), 'u');

/** True when the text looks like it contains mojibake (ftfy `is_bad`). */
export function isBad(text: string): boolean {
  return BADNESS_RE.test(text);
}
