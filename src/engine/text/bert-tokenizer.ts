/**
 * The BERT WordPiece tokenizer of latent-diffusion (LDM) text-to-image folders, as transformers' BertTokenizer:
 * clean-up, CJK spacing, lowercase and accent stripping, punctuation split, greedy longest-match WordPiece. It runs
 * on @huggingface/tokenizers, assembled from the folder's vocab.txt and tokenizer_config.json.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { ModelFolderError } from '../onnx/session.js';
import type { EncodedPrompt } from './clip-tokenizer.js';

export class BertTokenizer {
  private constructor(
    private readonly tokenizer: Tokenizer,
    readonly maxLength: number,
    readonly clsId: number,
    readonly sepId: number,
    readonly padId: number,
  ) {}

  static async fromFolder(dir: string): Promise<BertTokenizer> {
    let vocabText: string;
    let config: Record<string, unknown>;
    try {
      vocabText = await readFile(join(dir, 'vocab.txt'), 'utf8');
      config = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new ModelFolderError(`cannot read the BERT tokenizer in ${dir}: ${(e as Error).message}`);
    }
    const vocab: Record<string, number> = {};
    vocabText.split('\n').forEach((line, i) => {
      const token = line.replace(/\r$/, '');
      if (token && !(token in vocab)) vocab[token] = i;
    });
    const name = (key: string, fallback: string) => (typeof config[key] === 'string' ? (config[key] as string) : fallback);
    const unk = name('unk_token', '[UNK]');
    const specials = [name('pad_token', '[PAD]'), unk, name('cls_token', '[CLS]'), name('sep_token', '[SEP]'), name('mask_token', '[MASK]')];
    const lower = config['do_lower_case'] !== false;
    const json = {
      normalizer: {
        type: 'BertNormalizer', clean_text: true, handle_chinese_chars: config['tokenize_chinese_chars'] !== false,
        strip_accents: config['strip_accents'] ?? null, lowercase: lower,
      },
      pre_tokenizer: { type: 'BertPreTokenizer' },
      model: { type: 'WordPiece', vocab, unk_token: unk, continuing_subword_prefix: '##', max_input_chars_per_word: 100 },
      // Special tokens are added by encodeForModel, so the post-processor is left empty.
      post_processor: null,
      decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
      added_tokens: specials.filter((t) => t in vocab).map((t) => ({
        id: vocab[t], content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
      })),
    };
    const tokenizer = new Tokenizer(json, config);
    const id = (t: string) => {
      const v = vocab[t];
      if (v === undefined) throw new ModelFolderError(`${dir}/vocab.txt lacks ${t}`);
      return v;
    };
    const maxLength = typeof config['model_max_length'] === 'number' && config['model_max_length'] < 100_000 ? config['model_max_length'] : 77;
    return new BertTokenizer(tokenizer, maxLength, id(specials[2]!), id(specials[3]!), id(specials[0]!));
  }

  encode(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  /** `tokenizer(text, padding="max_length", max_length=L, truncation=True)`: [CLS] + ids[:L−2] + [SEP] + [PAD]… */
  encodeForModel(text: string, maxLength = this.maxLength): EncodedPrompt {
    const ids = this.encode(text);
    const kept = ids.slice(0, maxLength - 2);
    const dropped = ids.slice(maxLength - 2);
    const out = [this.clsId, ...kept, this.sepId];
    while (out.length < maxLength) out.push(this.padId);
    return { ids: out, truncated: dropped.length > 0, droppedText: dropped.length ? this.tokenizer.decode(dropped) : '' };
  }
}
