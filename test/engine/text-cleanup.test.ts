import { describe, expect, it } from 'vitest';
import { clipCleanText, fixText, whitespaceClean } from '../../src/engine/text/text-cleanup.js';
import { fixEncoding } from '../../src/engine/text/mojibake.js';
import { isBad } from '../../src/engine/text/badness.js';
import { unescapeHtml } from '../../src/engine/text/html-entities.js';

// [input, ftfy 6.3.1 fix_text(input)] — outputs recorded from the Python reference.
const FIX_TEXT_CASES: [string, string][] = [
  // UTF-8 read as Windows-1252 / Latin-1 / MacRoman / Windows-1251
  ['caf\u00c3\u00a9', 'caf\u00e9'],
  ['\u00c3\u00a9l\u00c3\u00a8ve', '\u00e9l\u00e8ve'],
  ['\u00e2\u20ac\u0153mojibake quotes\u00e2\u20ac\u009d', '"mojibake quotes"'],
  ['The Mona Lisa doesn\u00c3\u00a2\u00e2\u201a\u00ac\u00e2\u201e\u00a2t have eyebrows.', "The Mona Lisa doesn't have eyebrows."],
  ['\u25ca\u00eb\u25ca\u00ee\u25ca\u00ef\u25ca\u00ec\u25ca\u00a2\u25ca\u00ee', '\u05d1\u05d4\u05d5\u05d3\u05e2\u05d4'],
  ['\u00d7\u2018\u00d7\u201d\u00d7\u2022\u00d7\u201c\u00d7\u00a2\u00d7\u201d', '\u05d1\u05d4\u05d5\u05d3\u05e2\u05d4'],
  ['\u00d0\u0178\u00d1\u20ac\u00d0\u00b8\u00d0\u00b2\u00d0\u00b5\u00d1\u201a', '\u041f\u0440\u0438\u0432\u0435\u0442'],
  ['\u00f0\u0178\u02dc\u20ac emoji', '\ud83d\ude00 emoji'],
  ['\u00c3\u00a2\u00e2\u201a\u00ac\u00c5\u201c', '"'],
  ['na\u00c3\u00afve caf\u00c3\u00a9 and \u2603', 'na\u00efve caf\u00e9 and \u2603'],
  // a space that was U+00A0, and bytes lost to U+FFFD
  ['voil\u00c3 le travail', 'voil\u00e0 le travail'],
  ['\u00c3 la mode', '\u00e0 la mode'],
  ['\u00c3\u00a0 bient\u00f4t', '\u00e0 bient\u00f4t'],
  ['\u00e2\u20ac\u0153 like this \u00e2\u20ac\ufffd', '" like this \ufffd'],
  // C1 controls
  ['x\u0080y\u0093z\u0094', 'x\u20acy"z"'],
  ['x\u0081y\u0093', 'x\u0081y"'],
  // HTML entities, only while no line so far contained '<'
  ['fish &amp; chips', 'fish & chips'],
  ['<b>fish</b> &amp; chips', '<b>fish</b> &amp; chips'],
  ['a &amp; b\n<i>c</i> &amp; d\n&amp; e', 'a & b\n<i>c</i> &amp; d\n&amp; e'],
  ['a &amp; b\nc &amp; d', 'a & b\nc & d'],
  ['&EACUTE;t&EACUTE; &SZLIG; &nTILDE;', '\u00c9t\u00c9 SS &nTILDE;'],
  ['&#x2019;&#8217;&#0;&#128;&#1;&#x110000;&#12ab;', "''\ufffd\u20ac\ufffd&#12ab;"],
  ['a&amp b', 'a&amp b'],
  ['this&not that', 'this&not that'],
  ['&notin; &lt;3', '\u2209 <3'],
  // width, ligatures, quotes
  ['\uff2c\uff2f\uff35\uff24\u3000\uff2e\uff2f\uff29\uff33\uff25\uff33', 'LOUD NOISES'],
  ['\uff8a\uff9b\uff70', '\u30cf\u30ed\u30fc'],
  ['\ufb01ne \ufb02ower \ufb03 \u0132 \u01c5 \ufb05', 'fine flower ffi IJ D\u017e \u017ft'],
  ['\u201ccurly\u201d \u2018single\u2019 \u201alow\u201e \u02bc', "\"curly\" 'single' 'low\" '"],
  // control characters, BOM, terminal escapes, line breaks, NFC
  ['\ufeffbom\u200b\u200d\u00ad', 'bom\u200b\u200d\u00ad'],
  ['bell\u0007char\u0000\u007f\ufffc', 'bellchar'],
  ['\u001b[31mred\u001b[0m text', 'red text'],
  ['a\r\nb\rc\u2028d\u2029e\u0085f', 'a\nb\nc\nd\ne\u2026f'],
  ['e\u0301 vs \u00e9', '\u00e9 vs \u00e9'],
  // left alone
  ['caf\u00e9', 'caf\u00e9'],
  ['\u00af\\_(\u30c4)_/\u00af', '\u00af\\_(\u30c4)_/\u00af'],
  ['\u00a35 for 2\u00d73 \u00bd', '\u00a35 for 2\u00d73 \u00bd'],
];

describe('fixText (ftfy.fix_text)', () => {
  it.each(FIX_TEXT_CASES)('fixes %j', (input, expected) => {
    expect(fixText(input)).toBe(expected);
  });

  it('replaces unpaired surrogates and keeps pairs', () => {
    expect(fixText('a\ud83db\ude00c\ud83d\ude00')).toBe('a\ufffdb\ufffdc\ud83d\ude00');
  });

  it('is idempotent on its own output', () => {
    for (const [, fixed] of FIX_TEXT_CASES) expect(fixText(fixed)).toBe(fixed);
  });
});

describe('mojibake helpers', () => {
  it('flags mojibake-looking text only', () => {
    const samples: [string, boolean][] = [
      ['caf\u00c3\u00a9', true], ['caf\u00e9', false], ['na\u00efve', false], ['\u00e2\u20ac\u0153', true],
      ['\u00c3 la', true], ['hello', false], ['\u00af\\_(\u30c4)_/\u00af', false], ['\u00c2\u00a35', true],
    ];
    for (const [text, bad] of samples) expect(isBad(text), text).toBe(bad);
  });

  it('fixEncoding leaves ASCII and clean text unchanged', () => {
    expect(fixEncoding('plain ascii')).toBe('plain ascii');
    expect(fixEncoding('Stra\u00dfe \u6771\u4eac')).toBe('Stra\u00dfe \u6771\u4eac');
  });

  it('unescapeHtml decodes only entities that end in a semicolon', () => {
    expect(unescapeHtml('&amp;&amp &lt;b&gt; &Jscr;')).toBe('&&amp <b> \u{1d4a5}');
  });
});

describe('CLIP whitespace clean', () => {
  it('uses Unicode White_Space for runs and str.isspace for the ends', () => {
    expect(whitespaceClean('  a \t\n b\u0085c\u3000d  ')).toBe('a b c d');
    expect(whitespaceClean('a\ufeffb')).toBe('a\ufeffb');
    expect(whitespaceClean('\x1ca\x1cb\x1f')).toBe('a\x1cb');
  });

  it('clipCleanText lowercases with full Unicode rules after fixing', () => {
    expect(clipCleanText('  \u0130STANBUL  \u03a3\u039f\u03a6\u039f\u03a3 ')).toBe('i\u0307stanbul \u03c3\u03bf\u03c6\u03bf\u03c2');
    expect(clipCleanText('CAF\u00c3\u0089 &AMP; \uff26\uff35\uff2c\uff2c')).toBe('caf\u00e9 & full');
  });
});
