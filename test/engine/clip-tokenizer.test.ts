import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClipTokenizer } from '../../src/engine/text/clip-tokenizer.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const models = join(repo, 'test/fixtures/models');
const sharedTokenizers = resolve(repo, '../shared/fixtures/tokenizers');
const haveShared = existsSync(join(sharedTokenizers, 'golden_public.json'));

interface TinyConfig { ids: number[]; ids_77: number[] }
interface TinyCase { id: string; category: string; text: string; eot_pad: TinyConfig; bang_pad: TinyConfig }
const tiny = JSON.parse(readFileSync(join(models, 'tiny-clip-tokenizer.golden.json'), 'utf8')) as {
  cases: TinyCase[];
  meta: { tokenizers: Record<'eot_pad' | 'bang_pad', { folders: string[]; pad_token_id: number; bos_token_id: number; eos_token_id: number }> };
};

describe.each(['eot_pad', 'bang_pad'] as const)('tiny vocab goldens (%s)', (config) => {
  const meta = tiny.meta.tokenizers[config];
  let tok: ClipTokenizer;
  beforeAll(async () => {
    tok = await ClipTokenizer.fromFolder(join(models, meta.folders[0]!));
  });

  it('reads the special ids and length from the folder', () => {
    expect([tok.bosId, tok.eosId, tok.padId, tok.maxLength]).toEqual([meta.bos_token_id, meta.eos_token_id, meta.pad_token_id, 77]);
  });

  it.each(tiny.cases.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    expect(tok.encode(c.text)).toEqual(c[config].ids);
    const model = tok.encodeForModel(c.text);
    expect(model.ids).toEqual(c[config].ids_77);
    expect(model.truncated).toBe(c[config].ids.length > 75);
  });
});

interface FullCase {
  id: string;
  text: string;
  clip: { ids: number[]; sd1_77: number[]; pad0_77: number[]; sdxl2_77: number[]; ids_sdxl2?: number[] };
}

describe.skipIf(!haveShared)('full CLIP vocab goldens (../shared/fixtures/tokenizers)', () => {
  const cases: FullCase[] = haveShared
    ? (JSON.parse(readFileSync(join(sharedTokenizers, 'golden_public.json'), 'utf8')) as { cases: FullCase[] }).cases
    : [];
  let dirs: string[] = [];
  let sd1: ClipTokenizer;
  let sdxl2: ClipTokenizer;

  beforeAll(async () => {
    // SD1 tokenizer/: pad <|endoftext|>. SDXL tokenizer_2/: pad "!" registered as a special added token (id 0).
    const sd1Dir = mkdtempSync(join(tmpdir(), 'clip-sd1-'));
    const sdxl2Dir = mkdtempSync(join(tmpdir(), 'clip-sdxl2-'));
    dirs = [sd1Dir, sdxl2Dir];
    for (const dir of dirs) for (const f of ['vocab.json', 'merges.txt']) copyFileSync(join(sharedTokenizers, 'clip', f), join(dir, f));
    const special = (content: string) => ({ content, lstrip: false, normalized: true, rstrip: false, single_word: false, special: true });
    writeFileSync(join(sd1Dir, 'tokenizer_config.json'), JSON.stringify({
      added_tokens_decoder: { 49406: special('<|startoftext|>'), 49407: special('<|endoftext|>') },
      bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', unk_token: '<|endoftext|>',
      model_max_length: 77, tokenizer_class: 'CLIPTokenizer',
    }));
    writeFileSync(join(sdxl2Dir, 'tokenizer_config.json'), JSON.stringify({
      added_tokens_decoder: { 0: { ...special('!'), normalized: false }, 49406: special('<|startoftext|>'), 49407: special('<|endoftext|>') },
      bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', pad_token: '!', unk_token: '<|endoftext|>',
      model_max_length: 77, tokenizer_class: 'CLIPTokenizer',
    }));
    writeFileSync(join(sdxl2Dir, 'special_tokens_map.json'), JSON.stringify({ pad_token: '!' }));
    sd1 = await ClipTokenizer.fromFolder(sd1Dir);
    sdxl2 = await ClipTokenizer.fromFolder(sdxl2Dir);
  });
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('loads the 49408-token vocabulary quickly', () => {
    expect([sd1.bosId, sd1.eosId, sd1.padId, sdxl2.padId]).toEqual([49406, 49407, 49407, 0]);
    expect(sd1.encode('a photo of a cat')).toEqual([320, 1125, 539, 320, 2368]);
  });

  it.each(cases.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    const ids = sd1.encode(c.text);
    expect(ids).toEqual(c.clip.ids);
    expect(sd1.encodeForModel(c.text).ids).toEqual(c.clip.sd1_77);
    // Same ids padded with 0: the pad-"!" convention without "!" registered as an added token.
    const pad0 = [sd1.bosId, ...ids.slice(0, 75), sd1.eosId];
    while (pad0.length < 77) pad0.push(0);
    expect(pad0).toEqual(c.clip.pad0_77);
    expect(sdxl2.encode(c.text)).toEqual(c.clip.ids_sdxl2 ?? c.clip.ids);
    expect(sdxl2.encodeForModel(c.text).ids).toEqual(c.clip.sdxl2_77);
  });
});

describe('ClipTokenizer behaviour', () => {
  let tok: ClipTokenizer;
  let bang: ClipTokenizer;
  beforeAll(async () => {
    tok = await ClipTokenizer.fromFolder(join(models, 'tiny-sd15/tokenizer'));
    bang = await ClipTokenizer.fromFolder(join(models, 'tiny-sd2-v/tokenizer'));
  });

  it('truncates to BOS + L-2 ids + EOS and reports the dropped words', () => {
    const words = Array.from({ length: 80 }, (_, i) => (i < 75 ? 'cat' : `dog`));
    const r = tok.encodeForModel(words.join(' '));
    expect(r.ids).toHaveLength(77);
    expect(r.ids[0]).toBe(tok.bosId);
    expect(r.ids[76]).toBe(tok.eosId);
    expect(r.truncated).toBe(true);
    expect(r.droppedText).toBe('dog dog dog dog dog');
    const short = tok.encodeForModel('a cat', 8);
    expect(short).toEqual({ ids: [tok.bosId, ...tok.encode('a cat'), tok.eosId, tok.padId, tok.padId, tok.padId, tok.padId], truncated: false, droppedText: '' });
  });

  it('pads with the folder pad token and splits "!" out only where it is an added token', () => {
    expect(bang.encodeForModel('wow!', 6).ids).toEqual([bang.bosId, ...bang.encode('wow'), 0, bang.eosId, 0, 0].slice(0, 6));
    // Through BPE, "!!" is the symbols "!" and "!</w>" (ids 0 and 256) in the tiny vocab.
    expect(tok.encode('wow!!').slice(-2)).toEqual([0, 256]);
    expect(bang.encode('wow!!').slice(-2)).toEqual([0, 0]);
  });

  it('maps special-token literals to their ids, also in upper case via the CLIP regex', () => {
    expect(tok.encode('<|endoftext|>')).toEqual([tok.eosId]);
    expect(tok.encode('a<|ENDOFTEXT|>b')).toEqual([...tok.encode('a'), tok.eosId, ...tok.encode('b')]);
    expect(tok.encode('<|startoftext|>')).toEqual([tok.bosId]);
  });

  it('decodes ids back to text', () => {
    expect(tok.decode(tok.encode('A photo of a cat, at night.'))).toBe('a photo of a cat, at night.');
    expect(tok.decode(tok.encode('café 東京 😀'))).toBe('café 東京 😀');
  });

  it('gives empty prompts just BOS and EOS', () => {
    expect(tok.encode('  \n\t ')).toEqual([]);
    expect(tok.encodeForModel('').ids.slice(0, 3)).toEqual([tok.bosId, tok.eosId, tok.padId]);
  });

  it('rejects a model length below 2', () => {
    expect(() => tok.encodeForModel('x', 1)).toThrow(RangeError);
  });
});

describe('tokenizer folder config', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'clip-cfg-'));
    for (const f of ['vocab.json', 'merges.txt']) copyFileSync(join(models, 'tiny-sd15/tokenizer', f), join(dir, f));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('uses CLIPTokenizer defaults without config files, and 77 when no length is given', async () => {
    const tok = await ClipTokenizer.fromFolder(dir);
    expect([tok.bosId, tok.eosId, tok.padId, tok.maxLength]).toEqual([992, 993, 993, 77]);
  });

  it('lets special_tokens_map.json override tokenizer_config.json; unknown specials get new ids', async () => {
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ pad_token: '<|endoftext|>', model_max_length: 32 }));
    writeFileSync(join(dir, 'special_tokens_map.json'), JSON.stringify({ pad_token: { content: '<pad>', rstrip: true } }));
    const tok = await ClipTokenizer.fromFolder(dir);
    expect(tok.maxLength).toBe(32);
    expect(tok.padId).toBe(994);
    // rstrip: the whitespace after the added token is removed before the rest is tokenized.
    expect(tok.encode('a<pad>   cat')).toEqual([...tok.encode('a'), 994, ...tok.encode('cat')]);
    expect(tok.encodeForModel('a cat').ids.at(-1)).toBe(994);
  });
});
