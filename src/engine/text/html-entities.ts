/**
 * ftfy's `unescape_html`: decode HTML entities that end in ";" (HTML5 names, their unambiguous upper-case forms,
 * and numeric references with Python `html.unescape`'s rules), leaving anything ambiguous such as `&amp` alone.
 */
import { HTML_ENTITY_TABLE } from './html-entity-table.js';
import { CODE_PAGES } from './code-pages.js';

let entities: Map<string, string> | undefined;

function entityMap(): Map<string, string> {
  if (entities) return entities;
  entities = new Map();
  for (const pair of HTML_ENTITY_TABLE.split(' ')) {
    const eq = pair.indexOf('=');
    const value = String.fromCodePoint(...pair.slice(eq + 1).split('.').map((h) => parseInt(h, 16)));
    entities.set(`&${pair.slice(0, eq)};`, value);
  }
  return entities;
}

const WINDOWS_1252_HIGH = CODE_PAGES.find((p) => p.name === 'sloppy-windows-1252')!.high;

/** Python's html module replaces these code points in numeric references by nothing (they are not characters). */
function isInvalidCodePoint(cp: number): boolean {
  return (
    (cp >= 0x1 && cp <= 0x8) ||
    cp === 0xb ||
    (cp >= 0xe && cp <= 0x1f) ||
    (cp >= 0x7f && cp <= 0x9f) ||
    (cp >= 0xfdd0 && cp <= 0xfdef) ||
    (cp & 0xfffe) === 0xfffe
  );
}

/** Python `html.unescape` of a numeric character reference; `undefined` when it would not consume the whole `&#…;`. */
function numericReference(body: string): string | undefined {
  const m = /^(?:([0-9]+)|[xX]([0-9a-fA-F]+));$/.exec(body);
  if (!m) return undefined;
  const digits = m[1] ?? m[2] ?? '';
  const big = BigInt(m[1] !== undefined ? digits : `0x${digits}`);
  if (big > 0x10ffffn) return '\ufffd';
  const cp = Number(big);
  if (cp === 0) return '\ufffd';
  if (cp === 0x0d) return '\r';
  if (cp >= 0x80 && cp <= 0x9f) return WINDOWS_1252_HIGH[cp - 0x80];
  if (cp >= 0xd800 && cp <= 0xdfff) return '\ufffd';
  if (isInvalidCodePoint(cp)) return '';
  return String.fromCodePoint(cp);
}

const HTML_ENTITY_RE = /&#?[0-9A-Za-z]{1,24};/g;

export function unescapeHtml(text: string): string {
  if (!text.includes('&')) return text;
  const map = entityMap();
  return text.replace(HTML_ENTITY_RE, (entity) => {
    const named = map.get(entity);
    if (named !== undefined) return named;
    if (entity.startsWith('&#')) return numericReference(entity.slice(2)) ?? entity;
    return entity;
  });
}
