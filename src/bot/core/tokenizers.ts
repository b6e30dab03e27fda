/** Prompt tokenizers per model, from each model folder's `tokenizer/` (when the bot runs where the folders are). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelsConfig } from '../../engine/models-file.js';
import { ClipTokenizer } from '../../engine/text/clip-tokenizer.js';
import type { PromptTokenizer } from './validate.js';

export async function loadPromptTokenizers(config: ModelsConfig): Promise<(model: string) => PromptTokenizer | undefined> {
  const byModel = new Map<string, PromptTokenizer>();
  await Promise.all(config.models.map(async (m) => {
    const dir = join(m.dir, 'tokenizer');
    if (!existsSync(join(dir, 'vocab.json'))) return;
    byModel.set(m.id, await ClipTokenizer.fromFolder(dir));
  }));
  return (model) => byModel.get(model);
}
