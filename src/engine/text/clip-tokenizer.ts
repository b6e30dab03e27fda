/**
 * CLIP text tokenizer, id-for-id with Hugging Face's slow `CLIPTokenizer` (transformers 4.57, ftfy installed) as
 * diffusers loads it from a model's `tokenizer/` or `tokenizer_2/` folder:
 *   1. added tokens (specials, and e.g. the pad `!` of OpenCLIP configs) are cut out of the raw text first;
 *   2. each piece in between: ftfy.fix_text → whitespace clean → lowercase → CLIP regex → byte-level BPE.
 */
import { ClipBpe, bytesToUnicode } from './clip-bpe.js';
import { clipCleanText } from './text-cleanup.js';
import { readTokenizerFolder, type AddedToken, type TokenizerFolder } from './tokenizer-folder.js';

export interface EncodedPrompt {
  ids: number[];
  /** True when the prompt had more ids than fit between BOS and EOS. */
  truncated: boolean;
  /** The cut-off ids decoded back to text ('' when nothing was cut), so the user can be told what was ignored. */
  droppedText: string;
}

/** CLIP's pre-tokenizer; the two literal specials survive clean-up and map to their ids whole. */
const PRE_TOKEN_RE =
  /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\p{White_Space}\p{L}\p{N}]+/giu;
const WHOLE_PRE_TOKENS = new Set(['<|startoftext|>', '<|endoftext|>']);

/** Python str.isspace() characters, for the strip()s around added tokens. */
const PY_SPACE = '[\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const LEADING_SPACE = new RegExp(`^${PY_SPACE}+`);
const TRAILING_SPACE = new RegExp(`${PY_SPACE}+$`);

/** Model input length when the folder does not say (every SD text encoder takes 77 positions). */
const DEFAULT_MAX_LENGTH = 77;

type Piece = { text: string; added?: AddedToken };

export class ClipTokenizer {
  readonly maxLength: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  private readonly unkId: number;
  private readonly bpe: ClipBpe;
  private readonly idToToken = new Map<number, string>();
  private readonly byteOfSymbol = new Map<string, number>();
  /** Added tokens, longest first, so that the earliest and then longest match wins as in HF's trie split. */
  private readonly addedByLength: AddedToken[];

  private constructor(private readonly folder: TokenizerFolder) {
    this.bpe = new ClipBpe(folder.merges);
    for (const [token, id] of folder.vocab) this.idToToken.set(id, token);
    for (const t of folder.addedTokens.values()) this.idToToken.set(t.id, t.content);
    bytesToUnicode().forEach((symbol, byte) => this.byteOfSymbol.set(symbol, byte));
    this.addedByLength = [...folder.addedTokens.values()]
      .filter((t) => t.content.length > 0)
      .sort((a, b) => b.content.length - a.content.length);
    this.maxLength = folder.modelMaxLength ?? DEFAULT_MAX_LENGTH;
    this.bosId = this.tokenId(folder.bos);
    this.eosId = this.tokenId(folder.eos);
    this.padId = this.tokenId(folder.pad);
    this.unkId = this.tokenId(folder.unk);
  }

  /** Loads vocab.json, merges.txt, tokenizer_config.json and special_tokens_map.json from a tokenizer folder. */
  static async fromFolder(dir: string): Promise<ClipTokenizer> {
    return new ClipTokenizer(await readTokenizerFolder(dir));
  }

  private tokenId(token: string): number {
    const id = this.folder.addedTokens.get(token)?.id ?? this.folder.vocab.get(token);
    if (id === undefined) throw new Error(`tokenizer: special token ${JSON.stringify(token)} has no id`);
    return id;
  }

  /** Token ids of the text, without BOS/EOS (HF `add_special_tokens=False`). */
  encode(text: string): number[] {
    const ids: number[] = [];
    for (const piece of this.splitAddedTokens(text)) {
      if (piece.added) ids.push(piece.added.id);
      else for (const token of this.tokenizePiece(piece.text)) ids.push(this.convertToken(token));
    }
    return ids;
  }

  /**
   * The text encoder's input as diffusers builds it (`padding="max_length", truncation=True`):
   * `[bos] + ids[:L-2] + [eos]`, padded to L with the folder's pad token.
   */
  encodeForModel(text: string, maxLength: number = this.maxLength): EncodedPrompt {
    if (!Number.isInteger(maxLength) || maxLength < 2) throw new RangeError(`maxLength must be an integer >= 2, got ${maxLength}`);
    const all = this.encode(text);
    const room = maxLength - 2;
    const kept = all.slice(0, room);
    const ids = [this.bosId, ...kept, this.eosId];
    while (ids.length < maxLength) ids.push(this.padId);
    const truncated = all.length > room;
    return { ids, truncated, droppedText: truncated ? this.decode(all.slice(room)) : '' };
  }

  /** Text of the ids (HF `decode` with its defaults: special tokens kept, `</w>` read as a space). */
  decode(ids: number[]): string {
    const parts: string[] = [];
    let run: string[] = [];
    const flush = (): void => {
      if (run.length) parts.push(this.tokensToString(run));
      run = [];
    };
    for (const id of ids) {
      const token = this.idToToken.get(id);
      if (token === undefined) continue;
      const added = this.folder.addedTokens.get(token);
      // Plain (non-special) added tokens are kept verbatim, as separate words.
      if (added && added.id === id && !added.special && !this.folder.specialContents.has(token)) {
        flush();
        parts.push(token);
      } else run.push(token);
    }
    flush();
    const text = parts.join(' ');
    return this.folder.cleanUpTokenizationSpaces ? cleanUpTokenization(text) : text;
  }

  private tokensToString(tokens: string[]): string {
    const bytes: number[] = [];
    for (const ch of tokens.join('')) {
      const b = this.byteOfSymbol.get(ch);
      if (b !== undefined) bytes.push(b);
    }
    return new TextDecoder('utf-8').decode(Uint8Array.from(bytes)).replaceAll('</w>', ' ').replace(LEADING_SPACE, '').replace(TRAILING_SPACE, '');
  }

  private convertToken(token: string): number {
    return this.folder.addedTokens.get(token)?.id ?? this.folder.vocab.get(token) ?? this.unkId;
  }

  /** BPE token strings of a piece of text that holds no added token. */
  private tokenizePiece(text: string): string[] {
    const tokens: string[] = [];
    // U+0345 (a combining mark whose case fold is ι) matches no branch of the case-insensitive regex in Python's
    // `regex`, so it only separates its neighbours; JS's /iu would glue it to letters.
    const cleaned = clipCleanText(text).replaceAll('\u0345', ' ');
    for (const match of cleaned.matchAll(PRE_TOKEN_RE)) {
      const pre = match[0];
      if (WHOLE_PRE_TOKENS.has(pre)) tokens.push(pre);
      else tokens.push(...this.bpe.bpe(this.bpe.toByteSymbols(pre)));
    }
    return tokens;
  }

  /** HF's added-token split (trie: earliest match, then longest), with the tokens' lstrip/rstrip/single_word. */
  private splitAddedTokens(text: string): Piece[] {
    const pieces: Piece[] = [];
    let start = 0;
    let i = 0;
    while (i < text.length) {
      const hit = this.addedByLength.find((t) => text.startsWith(t.content, i));
      if (!hit) {
        i++;
        continue;
      }
      pieces.push({ text: text.slice(start, i) }, { text: hit.content, added: hit });
      i += hit.content.length;
      start = i;
    }
    pieces.push({ text: text.slice(start) });

    for (let k = 0; k < pieces.length; k++) {
      const added = pieces[k]!.added;
      if (!added) continue;
      const left = pieces[k - 1];
      const right = pieces[k + 1];
      if (added.rstrip && right && !right.added) right.text = right.text.replace(LEADING_SPACE, '');
      if (added.lstrip && left && !left.added) left.text = left.text.replace(TRAILING_SPACE, '');
      if (added.singleWord && left && !left.added && left.text && !left.text.endsWith(' ')) {
        left.text += added.content;
        pieces[k] = { text: '' };
      } else if (added.singleWord && right && !right.added && right.text && !right.text.startsWith(' ')) {
        pieces[k] = { text: added.content + right.text };
        right.text = '';
      }
    }
    return pieces.filter((p) => p.added || p.text.length > 0);
  }
}

/** transformers' clean_up_tokenization: no space before punctuation and English contractions. */
function cleanUpTokenization(text: string): string {
  return text
    .replaceAll(' .', '.')
    .replaceAll(' ?', '?')
    .replaceAll(' !', '!')
    .replaceAll(' ,', ',')
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}
