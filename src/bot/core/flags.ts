/**
 * Midjourney-style flags inside a prompt: `a lighthouse at dusk --ar 16:9 --seed 42 --no text, blur`.
 * The prompt is the text before the first flag. A text flag (`--no`) takes everything up to the next flag; other
 * flags take one word and give any further words back to the prompt.
 */
import { UserError } from './errors.js';
import { allFlags, optionByFlag, type OptionSpec } from './options.js';

export interface SplitPrompt {
  prompt: string;
  /** Raw value per option name, '' for a value-less flag. */
  values: Map<string, string>;
}

// Phones turn "--" into an em or en dash; accept those as flag starts too.
const FLAG_START = /(^|\s)(?:--|\u2014|\u2013)([a-zA-Z][\w-]*)/g;

export function splitFlags(text: string): SplitPrompt {
  const matches = [...text.matchAll(FLAG_START)];
  const first = matches[0];
  const promptParts = [first ? text.slice(0, first.index) : text];
  const values = new Map<string, string>();
  matches.forEach((m, i) => {
    const start = (m.index ?? 0) + m[0].length;
    const end = matches[i + 1]?.index ?? text.length;
    const flag = `--${(m[2] ?? '').toLowerCase()}`;
    const option = optionByFlag(flag);
    if (!option) throw new UserError(unknownFlagMessage(flag));
    if (values.has(option.name)) throw new UserError(`\`${flag}\` is given twice: keep one.`);
    const raw = text.slice(start, end).trim();
    const [value, rest] = takeValue(option, raw);
    if (value === '' && !option.valueOptional) throw new UserError(missingValueMessage(flag, option));
    values.set(option.name, value);
    if (rest) promptParts.push(rest);
  });
  return { prompt: promptParts.join(' ').replace(/\s+/g, ' ').trim(), values };
}

function takeValue(option: OptionSpec, raw: string): [string, string] {
  if (option.type === 'text') return [raw, ''];
  // "0, 0" for a crop and "16 : 9" for a ratio are one value; quotes around a value are not part of it.
  const joined = raw.replace(/^(\d+)\s*([,:x×])\s*(\d+)/i, '$1$2$3').replace(/^(["'“‘])([^\s"'”’]*)["'”’]/, '$2');
  const space = joined.search(/\s/);
  return space < 0 ? [joined, ''] : [joined.slice(0, space), joined.slice(space + 1).trim()];
}

function missingValueMessage(flag: string, option: OptionSpec): string {
  const example = option.example ?? option.choices?.[0] ?? '…';
  return `\`${flag}\` needs a value, for example \`${flag} ${example}\`.`;
}

function unknownFlagMessage(flag: string): string {
  const near = closest(flag, allFlags());
  const hint = near ? ` Did you mean \`${near}\`?` : '';
  return `I don't know the flag \`${flag}\`.${hint} Flags I understand: ${allFlags().map((f) => `\`${f}\``).join(', ')}.`;
}

/** The candidate within edit distance 2 of `word`, if any: catches typos like --seeed. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}
