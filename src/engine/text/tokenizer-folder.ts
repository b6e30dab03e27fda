/**
 * Reads a transformers tokenizer folder (`tokenizer/`, `tokenizer_2/`) the way the slow CLIPTokenizer's
 * from_pretrained does: which strings are added tokens (split out of the text before any clean-up), which of them
 * are bos / eos / unk / pad, and the model's maximum length. Nothing is assumed from the model's name.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  lstrip: boolean;
  rstrip: boolean;
  singleWord: boolean;
}

export interface TokenizerFolder {
  vocab: Map<string, number>;
  merges: string;
  /** Every added token: `added_tokens_decoder` plus the bos / eos / unk / pad tokens, by content. */
  addedTokens: Map<string, AddedToken>;
  bos: string;
  eos: string;
  unk: string;
  pad: string;
  /** Contents of the named special tokens (bos, eos, unk, pad, additional_special_tokens). */
  specialContents: Set<string>;
  modelMaxLength: number | undefined;
  cleanUpTokenizationSpaces: boolean;
}

type Json = Record<string, unknown>;

async function readJson(path: string, required: boolean): Promise<Json> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${path}: expected a JSON object`);
  return value as Json;
}

interface TokenSpec {
  content: string;
  special?: boolean;
  lstrip: boolean;
  rstrip: boolean;
  singleWord: boolean;
}

/** A special-token entry is either a plain string or an AddedToken dict. */
function tokenSpec(value: unknown): TokenSpec | undefined {
  if (typeof value === 'string') return { content: value, lstrip: false, rstrip: false, singleWord: false };
  if (typeof value === 'object' && value !== null && typeof (value as Json).content === 'string') {
    const v = value as Json;
    return {
      content: v.content as string,
      special: typeof v.special === 'boolean' ? v.special : undefined,
      lstrip: v.lstrip === true,
      rstrip: v.rstrip === true,
      singleWord: v.single_word === true,
    };
  }
  return undefined;
}

/** CLIPTokenizer's constructor defaults, used when neither config file names the token. */
const CLIP_DEFAULTS = {
  bos_token: '<|startoftext|>',
  eos_token: '<|endoftext|>',
  unk_token: '<|endoftext|>',
  pad_token: '<|endoftext|>',
} as const;
type SpecialKey = keyof typeof CLIP_DEFAULTS;

/** transformers' "no limit" model_max_length is 1e30; treat anything that large as unset. */
const UNSET_MAX_LENGTH = 1e29;

export async function readTokenizerFolder(dir: string): Promise<TokenizerFolder> {
  const vocabJson = await readJson(join(dir, 'vocab.json'), true);
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(vocabJson)) {
    if (typeof id !== 'number') throw new Error(`${dir}/vocab.json: id of ${JSON.stringify(token)} is not a number`);
    vocab.set(token, id);
  }
  const merges = await readFile(join(dir, 'merges.txt'), 'utf8');
  const config = await readJson(join(dir, 'tokenizer_config.json'), false);
  const specialMap = await readJson(join(dir, 'special_tokens_map.json'), false);

  const addedTokens = new Map<string, AddedToken>();
  const decoderJson = config.added_tokens_decoder;
  if (typeof decoderJson === 'object' && decoderJson !== null) {
    for (const [idText, value] of Object.entries(decoderJson as Json)) {
      const spec = tokenSpec(value);
      if (!spec) continue;
      addedTokens.set(spec.content, { ...spec, id: Number(idText), special: spec.special ?? false });
    }
  }

  // special_tokens_map.json overrides tokenizer_config.json, which overrides the class defaults.
  const pick = (key: SpecialKey): TokenSpec =>
    tokenSpec(specialMap[key]) ?? tokenSpec(config[key]) ?? tokenSpec(CLIP_DEFAULTS[key])!;
  const named: Record<SpecialKey, TokenSpec> = {
    bos_token: pick('bos_token'),
    eos_token: pick('eos_token'),
    unk_token: pick('unk_token'),
    pad_token: pick('pad_token'),
  };
  const extraJson = specialMap.additional_special_tokens ?? config.additional_special_tokens;
  const extra = Array.isArray(extraJson) ? extraJson.map(tokenSpec).filter((t): t is TokenSpec => t !== undefined) : [];

  // Special tokens not yet registered become added tokens: at their vocab id, or appended after the vocabulary.
  let nextId = vocab.size + [...addedTokens.values()].filter((t) => !vocab.has(t.content)).length;
  for (const spec of [...Object.values(named), ...extra]) {
    if (addedTokens.has(spec.content)) continue;
    const id = vocab.get(spec.content) ?? nextId++;
    addedTokens.set(spec.content, { ...spec, id, special: true });
  }

  const maxLen = config.model_max_length;
  return {
    vocab,
    merges,
    addedTokens,
    bos: named.bos_token.content,
    eos: named.eos_token.content,
    unk: named.unk_token.content,
    pad: named.pad_token.content,
    specialContents: new Set([...Object.values(named), ...extra].map((t) => t.content)),
    modelMaxLength: typeof maxLen === 'number' && maxLen > 0 && maxLen < UNSET_MAX_LENGTH ? maxLen : undefined,
    cleanUpTokenizationSpaces: config.clean_up_tokenization_spaces === true,
  };
}
