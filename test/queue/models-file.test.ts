/** The engine worker's models file and `--model DIR` folders: ids, paths, the default model, per-model defaults. */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyModelDefaults, idFromDir, loadModelsFile, parseModelsFile, resolveModels } from '../../src/engine/models-file.js';
import { generationRequestSchema } from '../../src/queue/job.js';

describe('models file', () => {
  it('defaults ids to folder names, resolves dirs against the file, and picks the default', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sdbot-models-'));
    const file = join(dir, 'models.json');
    writeFileSync(file, JSON.stringify({
      default: 'xl',
      models: [
        { dir: 'weights/sd15', defaults: { sampler: 'euler_a', steps: 25, cfg: 7, width: 512, height: 512 } },
        { id: 'xl', dir: '/abs/sdxl-base', load: false },
      ],
    }));
    const cfg = loadModelsFile(file);
    expect(cfg.defaultModel).toBe('xl');
    expect(cfg.models).toEqual([
      { id: 'sd15', dir: join(dir, 'weights/sd15'), load: true, defaults: { sampler: 'euler_a', steps: 25, cfg: 7, width: 512, height: 512 } },
      { id: 'xl', dir: '/abs/sdxl-base', load: false },
    ]);
    expect(parseModelsFile({ models: [{ dir: '/m/a' }, { dir: '/m/b' }] }, '/').defaultModel).toBe('a');
  });

  it('rejects what would break routing, with readable messages', () => {
    expect(() => parseModelsFile({ models: [] }, '/')).toThrow(/lists no models/);
    expect(() => parseModelsFile({ models: [{ dir: '/a/m' }, { dir: '/b/m' }] }, '/')).toThrow(/"m" appears twice/);
    expect(() => parseModelsFile({ default: 'zz', models: [{ dir: '/a/m' }] }, '/')).toThrow(/default model "zz" is not listed/);
    expect(() => parseModelsFile({ models: [{ dir: '/a/m', defaults: { steps: 0 } }] }, '/')).toThrow(/models\.0\.defaults\.steps/);
    expect(() => parseModelsFile({ models: [{ id: 'has space', dir: '/a' }] }, '/')).toThrow(/model id/);
    expect(() => idFromDir('/models/my model')).toThrow(/name it in a models file/);
    expect(() => loadModelsFile('/nonexistent/models.json')).toThrow(/cannot read models file/);
  });

  it('merges --model folders with the file: a folder in both keeps the file id and is loaded', () => {
    const file = parseModelsFile({ models: [{ id: 'base', dir: '/m/sd15', load: false }, { dir: '/m/other', load: false }] }, '/');
    const cfg = resolveModels(['/m/sd15', '/m/extra'], file);
    expect(cfg.models.map((m) => [m.id, m.load])).toEqual([['base', true], ['other', false], ['extra', true]]);
    expect(cfg.defaultModel).toBe('base');
    expect(resolveModels(['/m/one', '/m/two'], null).defaultModel).toBe('one');
    expect(() => resolveModels(['/a/same', '/b/same'], null)).toThrow(/two models would have the id "same"/);
  });

  it('fills only the request fields the user left unset', () => {
    const defaults = { sampler: 'dpmpp_2m', steps: 30, cfg: 5, width: 768, height: 512 } as const;
    const unset = generationRequestSchema.parse({ model: 'm', prompt: 'p', seed: '1' });
    expect(applyModelDefaults(unset, defaults)).toMatchObject({ sampler: 'dpmpp_2m', steps: 30, guidance: 5, width: 768, height: 512 });
    const set = generationRequestSchema.parse({ model: 'm', prompt: 'p', seed: '1', sampler: 'euler', steps: 4, guidance: 0, width: 64, height: 64 });
    expect(applyModelDefaults(set, defaults)).toEqual(set);
    expect(applyModelDefaults(unset, undefined)).toBe(unset);
  });
});
