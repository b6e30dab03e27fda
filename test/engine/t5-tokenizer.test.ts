/** SD3's T5 tokenizer against T5TokenizerFast goldens (tiny-t5-tokenizer.golden.json): ids, and 77/16-long model inputs. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { T5Tokenizer } from '../../src/engine/text/t5-tokenizer.js';
import { FIXTURE_MODELS } from '../helpers/fixture-cases.js';

interface T5Case { id: string; text: string; ids: number[]; ids_77: number[]; ids_16: number[] }
const cases = (JSON.parse(readFileSync(join(FIXTURE_MODELS, 'tiny-t5-tokenizer.golden.json'), 'utf8')) as { cases: T5Case[] }).cases;

describe('T5 tokenizer', async () => {
  const tok = await T5Tokenizer.fromFolder(join(FIXTURE_MODELS, 'tiny-sd3', 'tokenizer_3'));
  it.each(cases.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    expect(tok.encode(c.text)).toEqual(c.ids);
    expect(tok.encodeForModel(c.text, 77).ids).toEqual(c.ids_77);
    expect(tok.encodeForModel(c.text, 16).ids).toEqual(c.ids_16);
  });
  it('reports what truncation dropped', () => {
    const long = cases.find((c) => c.ids.length > 16)!;
    const enc = tok.encodeForModel(long.text, 16);
    expect(enc.truncated).toBe(true);
    expect(enc.droppedText.length).toBeGreaterThan(0);
  });
});
