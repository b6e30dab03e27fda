/**
 * CLIP's byte-level BPE: a pre-token's UTF-8 bytes become GPT-2 byte symbols, the last one marked with `</w>`, and
 * the adjacent pair with the lowest merge rank is merged (every occurrence, left to right) until none is in the
 * merge list. Results are cached per pre-token: prompts repeat words a lot.
 */

/** GPT-2's byte → printable character table: printable Latin-1 bytes map to themselves, the rest to U+0100…. */
export function bytesToUnicode(): string[] {
  const table: string[] = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = String.fromCharCode(printable ? b : 0x100 + extra++);
  }
  return table;
}

const END_OF_WORD = '</w>';
/** CLIP's vocabulary is 49152 ids: 256 bytes, 256 bytes + `</w>`, the merges, and 2 specials. */
const MAX_MERGES = 49152 - 256 - 2;

export class ClipBpe {
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, string[]>();
  private readonly byteSymbols = bytesToUnicode();
  private readonly encoder = new TextEncoder();

  /**
   * `merges` is merges.txt's content. As HF's CLIPTokenizer does, the first line (the `#version` header) is always
   * skipped and only the first 49152 − 256 − 2 merges count; rank = line order, a repeated pair keeps its last rank.
   */
  constructor(merges: string, private readonly maxCache = 100_000) {
    const lines = merges.trim().split('\n').slice(1, MAX_MERGES + 1);
    lines.forEach((line, rank) => {
      const parts = line.trim().split(/\s+/);
      if (parts.length === 2) this.ranks.set(`${parts[0]} ${parts[1]}`, rank);
    });
  }

  get mergeCount(): number {
    return this.ranks.size;
  }

  /** The pre-token's UTF-8 bytes as byte symbols. */
  toByteSymbols(preToken: string): string {
    let s = '';
    for (const b of this.encoder.encode(preToken)) s += this.byteSymbols[b];
    return s;
  }

  /** BPE of a byte-symbol string; returns the final symbols (the last one ends in `</w>`). */
  bpe(symbols: string): string[] {
    const hit = this.cache.get(symbols);
    if (hit) return hit;
    let word = Array.from(symbols);
    word[word.length - 1] += END_OF_WORD;
    while (word.length > 1) {
      let best = Infinity;
      let first = '';
      let second = '';
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < best) {
          best = r;
          first = word[i]!;
          second = word[i + 1]!;
        }
      }
      if (best === Infinity) break;
      const merged: string[] = [];
      for (let i = 0; i < word.length; ) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(word[i]!);
          i += 1;
        }
      }
      word = merged;
    }
    if (this.cache.size >= this.maxCache) this.cache.clear();
    this.cache.set(symbols, word);
    return word;
  }
}
