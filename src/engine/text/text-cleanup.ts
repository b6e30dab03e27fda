/**
 * The text clean-up HF's slow CLIPTokenizer applies before BPE when ftfy is installed:
 * `whitespace_clean(ftfy.fix_text(text)).lower()` (ftfy 6.3 defaults; Python `regex` whitespace rules).
 */
import { unescapeHtml } from './html-entities.js';
import { fixEncoding } from './mojibake.js';
import {
  fixC1Controls,
  fixCharacterWidth,
  fixLatinLigatures,
  fixLineBreaks,
  fixSurrogates,
  removeControlChars,
  removeTerminalEscapes,
  uncurlQuotes,
} from './char-fixes.js';
import { PY_RE_SPACE } from './badness.js';

/** One ftfy segment, fixed until it stops changing (ftfy `fix_and_explain` with default settings). */
function fixSegment(text: string, unescape: boolean): string {
  for (;;) {
    const orig = text;
    if (unescape) text = unescapeHtml(text);
    text = fixEncoding(text);
    text = fixC1Controls(text);
    text = fixLatinLigatures(text);
    text = fixCharacterWidth(text);
    text = uncurlQuotes(text);
    text = fixLineBreaks(text);
    text = fixSurrogates(text);
    text = removeTerminalEscapes(text);
    text = removeControlChars(text);
    text = text.normalize('NFC');
    if (text === orig) return text;
  }
}

/** Segments longer than this are cut (ftfy's `max_decode_length`), bounding the work on one huge line. */
const MAX_SEGMENT = 1_000_000;

/**
 * ftfy.fix_text: fixes the text line by line. HTML entities are decoded only until a line containing `<` is seen
 * (from then on the text is taken for real HTML, whose entities must stay).
 */
export function fixText(text: string): string {
  let out = '';
  let unescape = true;
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos) + 1;
    if (end === 0) end = text.length;
    if (end - pos > MAX_SEGMENT) end = pos + MAX_SEGMENT;
    const segment = text.slice(pos, end);
    if (unescape && segment.includes('<')) unescape = false;
    out += fixSegment(segment, unescape);
    pos = end;
  }
  return out;
}

/** Python `regex` `\s` (Unicode White_Space) and Python `str.strip()` (str.isspace, which adds U+001C–U+001F). */
const WHITESPACE_RUN = /\p{White_Space}+/gu;
const STRIP_ENDS = new RegExp(`^[${PY_RE_SPACE}]+|[${PY_RE_SPACE}]+$`, 'g');

/** CLIP's whitespace_clean: every whitespace run becomes one space, then both ends are stripped. */
export function whitespaceClean(text: string): string {
  return text.replace(WHITESPACE_RUN, ' ').replace(STRIP_ENDS, '');
}

/** What CLIPTokenizer feeds its pre-tokenizer: whitespace_clean(ftfy.fix_text(text)).lower(). */
export function clipCleanText(text: string): string {
  return whitespaceClean(fixText(text)).toLowerCase();
}
