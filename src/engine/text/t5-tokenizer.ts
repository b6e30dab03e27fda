/**
 * The T5 tokenizer of SD3's third text encoder (T5TokenizerFast semantics), run by @huggingface/tokenizers from the
 * folder's tokenizer.json: SentencePiece Unigram with nmt_nfkc normalisation, `</s>` appended. The pipeline feeds
 * exactly max_sequence_length ids: the pieces cut to L−1, then `</s>`, then pad.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { ModelFolderError } from '../onnx/session.js';
import type { EncodedPrompt } from './clip-tokenizer.js';

export class T5Tokenizer {
  private constructor(
    private readonly tokenizer: Tokenizer,
    readonly eosId: number,
    readonly padId: number,
  ) {}

  static async fromFolder(dir: string): Promise<T5Tokenizer> {
    const read = async (name: string): Promise<Record<string, unknown>> => {
      try {
        return JSON.parse(await readFile(join(dir, name), 'utf8')) as Record<string, unknown>;
      } catch (e) {
        throw new ModelFolderError(`cannot read ${join(dir, name)}: ${(e as Error).message}`);
      }
    };
    const json = await read('tokenizer.json');
    const config = await read('tokenizer_config.json');
    const tokenizer = new Tokenizer(json, config);
    const idOf = (key: string, fallback: string, dflt: number): number => {
      const v = config[key];
      const text = typeof v === 'string' ? v : typeof v === 'object' && v !== null && 'content' in v ? String((v as { content: unknown }).content) : fallback;
      return tokenizer.token_to_id(text) ?? dflt;
    };
    return new T5Tokenizer(tokenizer, idOf('eos_token', '</s>', 1), idOf('pad_token', '<pad>', 0));
  }

  /** Ids with the trailing `</s>` (HF add_special_tokens=True). */
  encode(text: string): number[] {
    return this.tokenizer.encode(text).ids;
  }

  /** `tokenizer(text, padding="max_length", max_length=L, truncation=True)`: the EOS survives truncation. */
  encodeForModel(text: string, maxLength: number): EncodedPrompt {
    const ids = this.encode(text);
    const pieces = ids.at(-1) === this.eosId ? ids.slice(0, -1) : ids;
    const kept = pieces.slice(0, maxLength - 1);
    const dropped = pieces.slice(maxLength - 1);
    const out = [...kept, this.eosId];
    while (out.length < maxLength) out.push(this.padId);
    return { ids: out, truncated: dropped.length > 0, droppedText: dropped.length ? this.tokenizer.decode(dropped, { skip_special_tokens: true }) : '' };
  }
}
