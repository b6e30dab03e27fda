import { describe, expect, it } from 'vitest';
import { decodeAction, encodeAction, resultButtons } from '../../src/bot/core/actions.js';
import { BotState } from '../../src/bot/core/bot-state.js';
import { UserError } from '../../src/bot/core/errors.js';
import { splitFlags } from '../../src/bot/core/flags.js';
import { helpText } from '../../src/bot/core/help.js';
import { imageSlots } from '../../src/bot/core/image-slots.js';
import { cropCell, uploadFiles } from '../../src/bot/core/images.js';
import { readableReason } from '../../src/bot/core/job-follower.js';
import { captionLine, errorMessage, previewOf, progressMessage } from '../../src/bot/core/messages.js';
import { ModelCatalog, guessModelInfo } from '../../src/bot/core/models.js';
import { OPTIONS } from '../../src/bot/core/options.js';
import { ThrottledSink } from '../../src/bot/core/throttled-sink.js';
import { buildDraft, type ImagineInput, type ValidationContext } from '../../src/bot/core/validate.js';
import { WordFilter } from '../../src/bot/core/word-filter.js';
import { parseRequest } from '../../src/queue/job.js';
import { solidPng } from './memory-queue.js';
import sharp from 'sharp';

async function ctx(extra: Partial<ValidationContext> = {}): Promise<ValidationContext> {
  const catalog = new ModelCatalog({ models: async () => ['sd15', 'sdxl-base', 'x4-upscaler', 'sd15-inpainting'] }, [
    { id: 'sd15', family: 'sd15', role: 'base', isDefault: true },
    { id: 'sdxl-base', family: 'sdxl', role: 'base' },
  ]);
  await catalog.refresh();
  return { catalog, defaults: {}, randomSeed: () => '123', ...extra };
}
const origin = { platform: 'discord' as const, userId: 'u1' };
const draft = async (text: string, more: Partial<ImagineInput> = {}, c?: Partial<ValidationContext>) => buildDraft({ text, origin, ...more }, await ctx(c));
const fails = async (text: string, re: RegExp, more: Partial<ImagineInput> = {}) => {
  await expect(draft(text, more)).rejects.toThrow(re);
  await expect(draft(text, more)).rejects.toBeInstanceOf(UserError);
};

describe('flag parser', () => {
  it('splits the prompt from Midjourney-style flags', () => {
    const s = splitFlags('a lighthouse at dusk --ar 16:9 --seed 42 --no text, blur --steps 30');
    expect(s.prompt).toBe('a lighthouse at dusk');
    expect(Object.fromEntries(s.values)).toEqual({ ar: '16:9', seed: '42', negative: 'text, blur', steps: '30' });
  });
  it('gives extra words after a one-word flag back to the prompt, accepts phone dashes and spaced pairs', () => {
    const s = splitFlags('a cat —seed 5 wearing a hat --crop 0, 16 --ar 3 : 2');
    expect(s.prompt).toBe('a cat wearing a hat');
    expect(Object.fromEntries(s.values)).toEqual({ seed: '5', crop: '0,16', ar: '3:2' });
  });
  it('refuses unknown, repeated and empty flags with what is allowed', () => {
    expect(() => splitFlags('x --stepz 3')).toThrow(/Did you mean `--steps`/);
    expect(() => splitFlags('x --seed 1 --seed 2')).toThrow(/given twice/);
    expect(() => splitFlags('x --seed')).toThrow(/needs a value, for example `--seed 42`/);
    expect(() => splitFlags('x --frobnicate 2')).toThrow(/Flags I understand: .*--ar/);
  });
});

describe('validator', () => {
  it('maps options onto a GenerationRequest the contract accepts', async () => {
    const d = await draft('a fox --ar 16:9 --cfg 6.5 --sampler "dpmpp_2m" --count 2 --no blur', {}, {});
    expect(() => parseRequest(d.request)).not.toThrow();
    expect(d.request).toMatchObject({ kind: 'txt2img', model: 'sd15', prompt: 'a fox', sampler: 'dpmpp_2m', guidance: 6.5, count: 2, negativePrompt: 'blur', seed: '123' });
  });
  it('keeps the pixel count of the model for aspect ratios', async () => {
    expect((await draft('x --ar 16:9')).request).toMatchObject({ width: 704, height: 384 });
    expect((await draft('x --size 768x512')).request).toMatchObject({ width: 768, height: 512 });
  });
  it('snaps SDXL sizes and aspect ratios to the nearest training bucket, and says so', async () => {
    const ar = await draft('x --ar 2:3 --model sdxl-base');
    expect(ar.request).toMatchObject({ width: 832, height: 1216 });
    expect(ar.notes.join(' ')).toMatch(/832×1216 bucket \(nearest to 832×1280\)/);
    const size = await draft('x --size 1000x1000 --model sdxl-base');
    expect(size.request).toMatchObject({ width: 1024, height: 1024 });
    const onBucket = await draft('x --size 1152x896 --model sdxl-base');
    expect(onBucket.request).toMatchObject({ width: 1152, height: 896 });
    expect(onBucket.notes.join(' ')).not.toMatch(/bucket/);
  });
  it('keeps 64-bit seeds exact and accepts "random"', async () => {
    expect((await draft('x --seed 18446744073709551615')).request.seed).toBe('18446744073709551615');
    expect((await draft('x --seed random')).request.seed).toBe('123');
  });
  it('checks ranges, choices, families and combinations precisely', async () => {
    await fails('x --cfg 31', /`--cfg` must be a number from 0 to 30; you gave 31/);
    await fails('x --count 0', /from 1 to 4/);
    await fails('x --ar 10:1', /too extreme/);
    await fails('x --schedule karas', /Did you mean `karras`/);
    await fails('x --orig 1024x1024', /works only with SDXL models; `sd15` is SD15/);
    await fails('x --strength 0.5', /only applies when you give an image/);
    await fails('x --mode inpaint', /needs an image/);
    await fails('x --size 512x512 --width 512', /not both/);
    await fails('x', /needs a mask/, { options: { mode: 'inpaint' }, images: { image: { url: 'https://cdn.discordapp.com/a.png' } } });
    await fails('x --seed 4', /given twice/, { options: { seed: '5' } });
  });
  it('picks the special model a mode needs', async () => {
    const img = { url: 'https://cdn.discordapp.com/a.png' };
    expect((await draft('', { options: { mode: 'upscale' }, images: { image: img } })).request).toMatchObject({ kind: 'upscale', model: 'x4-upscaler', count: 1 });
    expect((await draft('a hat', { images: { image: img, mask: img } })).request).toMatchObject({ kind: 'inpaint', model: 'sd15-inpainting' });
  });
  it('takes --noise-level for upscales and variations only', async () => {
    const img = { url: 'https://cdn.discordapp.com/a.png' };
    expect((await draft('--noise-level 60', { options: { mode: 'upscale' }, images: { image: img } })).request).toMatchObject({ kind: 'upscale', noiseLevel: 60 });
    expect((await draft('--noise-level 300 --mode variation', { images: { image: img } })).request).toMatchObject({ kind: 'variation', noiseLevel: 300 });
    expect((await draft('', { options: { mode: 'upscale' }, images: { image: img } })).request).toMatchObject({ noiseLevel: null });
    await fails('a fox --noise-level 10', /applies to `--mode upscale` and `--mode variation` only/);
    await fails('a fox --noise-level 1000', /--noise-level` must be a whole number from 0 to 999/);
  });
  it('takes A1111 variation seeds as --vseed / --vstrength (strength 0.5 when left out)', async () => {
    expect((await draft('a fox --seed 42 --vseed 7 --vstrength 0.3')).request).toMatchObject({ seed: '42', variationSeed: '7', variationStrength: 0.3 });
    expect((await draft('a fox --variation-seed 18446744073709551615')).request).toMatchObject({ variationSeed: '18446744073709551615', variationStrength: 0.5 });
    expect((await draft('a fox')).request).toMatchObject({ variationSeed: null, variationStrength: 0 });
    await fails('a fox --vstrength 0.3', /`--vstrength` goes with `--vseed`/);
    await fails('a fox --vseed 7 --vstrength 2', /`--vstrength` must be a number from 0 to 1/);
  });

  it('turns a control image into a ControlNet job on the ControlNet model', async () => {
    const img = { url: 'https://cdn.discordapp.com/a.png' };
    const c = { catalog: await (async () => {
      const cat = new ModelCatalog({ models: async () => ['sd15', 'sd15-controlnet-canny'] }, [{ id: 'sd15', family: 'sd15', role: 'base', isDefault: true }]);
      await cat.refresh();
      return cat;
    })() };
    const d = await draft('a castle --control canny --control-scale 0.7', { images: { control: img } }, c);
    expect(d.request).toMatchObject({ kind: 'controlnet', model: 'sd15-controlnet-canny', controlPreprocess: 'canny', controlScale: 0.7 });
    expect(d.images.control).toEqual(img);
    await fails('x --control canny', /need a control image: the `control_image` option/);
  });
  it('an image with a control image is ControlNet img2img (a mask: inpaint) on the ControlNet model; --control-mode guess', async () => {
    const [img, ctl, mask] = [{ url: 'https://cdn.discordapp.com/a.png' }, { url: 'https://cdn.discordapp.com/c.png' }, { url: 'https://cdn.discordapp.com/m.png' }];
    const c = { catalog: await (async () => {
      const cat = new ModelCatalog({ models: async () => ['sd15', 'sd15-controlnet-canny'] }, [{ id: 'sd15', family: 'sd15', role: 'base', isDefault: true }]);
      await cat.refresh();
      return cat;
    })() };
    const i2i = await draft('a castle --strength 0.6 --control canny', { images: { image: img, control: ctl } }, c);
    expect(i2i.request).toMatchObject({ kind: 'img2img', model: 'sd15-controlnet-canny', strength: 0.6, controlPreprocess: 'canny', controlGuessMode: false });
    expect(i2i.images).toEqual({ image: img, control: ctl });
    const inp = await draft('a castle --control-mode guess', { images: { image: img, mask, control: ctl } }, c);
    expect(inp.request).toMatchObject({ kind: 'inpaint', model: 'sd15-controlnet-canny', controlGuessMode: true });
    // The result caption says the picture was steered (with a control image attached, as attachImages does).
    expect(captionLine({ ...i2i.request, controlImage: { kind: 'redis', key: 'k' } }, null, 0)).toContain('img2img · ControlNet ·');
    expect(captionLine({ ...inp.request, controlImage: { kind: 'redis', key: 'k' } }, null, 0)).toContain('inpaint · ControlNet (guess mode) ·');
    expect((await draft('--control-mode guess', { images: { control: ctl } }, c)).request).toMatchObject({ kind: 'controlnet', prompt: '', controlGuessMode: true });
    await fails('x', /`--mode depth` doesn't combine with a ControlNet control image \(img2img and inpaint do\)/, { options: { mode: 'depth' }, images: { image: img, control: ctl } });
    await fails('x --mode inpaint', /Inpainting needs a mask/, { images: { image: img, control: ctl } });
    await fails('x --mode img2img', /needs an image besides the control image/, { images: { control: ctl } });
    await fails('x', /A mask needs an image to paint on/, { images: { mask, control: ctl } });
    await fails('x --control-mode guess', /`--control-mode` need a control image/, {});
    await fails('x --control-mode wild', /can't be `wild`/, { images: { control: ctl } });
  });
  it('slots unnamed pictures: image then mask, or with a ControlNet flag the newest as the control image', () => {
    const [a, b] = [{ url: 'https://x/a.png' }, { url: 'https://x/b.png' }];
    expect(imageSlots([a, b], 'a hat')).toEqual({ image: a, mask: b });
    expect(imageSlots([a], 'a hat --strength 0.4')).toEqual({ image: a });
    expect(imageSlots([a, b], 'a hat --control canny')).toEqual({ control: b });
    expect(imageSlots([a], 'a hat —control-scale 0.5')).toEqual({ control: a });
    expect(imageSlots([], 'a hat --control none')).toEqual({});
    // A flag the parser refuses leaves the usual slots; prepare then reports the flag itself.
    expect(imageSlots([a, b], 'a hat --control canny --bogus')).toEqual({ image: a, mask: b });
  });
  it('applies server defaults, and reports prompts cut by the tokenizer', async () => {
    const tokenizer = { encodeForModel: (t: string) => ({ ids: new Array(77).fill(1), truncated: t.length > 10, droppedText: 'the last words' }) };
    const d = await draft('a very long prompt indeed', {}, { defaults: { steps: 12, sampler: 'euler', model: 'sdxl-base' }, tokenizerFor: () => tokenizer });
    expect(d.request).toMatchObject({ steps: 12, sampler: 'euler', model: 'sdxl-base' });
    expect(d.notes.join()).toContain('dropped: "the last words"');
  });
  it('refuses denied words when the filter is on', async () => {
    const filter = new WordFilter({ deny: ['gore*', 'bad thing'], allow: ['gorilla'] });
    await expect(draft('a gorilla in the jungle', {}, { filter })).resolves.toBeDefined();
    await expect(draft('so much GOREFEST', {}, { filter })).rejects.toThrow(/"gorefest"/);
    await expect(draft('a bad  thing', {}, { filter })).rejects.toThrow(/"bad thing"/);
    expect(new WordFilter().enabled).toBe(false);
  });
});

describe('help, ids, messages', () => {
  it('help lists every flag of the table', () => {
    const text = helpText();
    for (const o of OPTIONS) for (const f of o.flags) expect(text).toContain(`\`${f}\``);
  });
  it('action ids round-trip, stay under 100 chars and ignore foreign ids', () => {
    const jobId = '0f8fad5b-d9cb-469f-a165-70867728950e';
    for (const row of resultButtons(jobId, 4)) for (const b of row) {
      expect(b.id.length).toBeLessThanOrEqual(100);
      expect(decodeAction(b.id)?.jobId).toBe(jobId);
    }
    expect(resultButtons(jobId, 4).flat()).toHaveLength(4 + 5 + 1);
    expect(decodeAction('someone-elses-button')).toBeNull();
    expect(() => encodeAction({ action: 'reroll', index: 0, jobId: 'x'.repeat(100) })).toThrow();
  });
  it('engine failure reasons read as sentences', () => {
    expect(readableReason('BadRequestError: width must be a multiple of 8\n    at foo (x.ts:1)')).toBe('width must be a multiple of 8');
  });
  it('guesses model facts from ids', () => {
    expect(guessModelInfo('stable-diffusion-xl-refiner-1.0')).toMatchObject({ family: 'sdxl', role: 'refiner' });
    expect(guessModelInfo('stable-diffusion-x4-upscaler')).toMatchObject({ role: 'upscaler' });
  });
});

describe('admin state', () => {
  it('channel defaults override server defaults; bans persist through the hook', async () => {
    const saved: unknown[] = [];
    const s = new BotState({ load: async () => null, save: async (x) => void saved.push(x) });
    await s.setDefaults('discord:server:g', { steps: 10, model: 'a' });
    await s.setDefaults('discord:channel:c', { steps: 20 });
    expect(s.defaultsFor('discord', 'g', 'c')).toEqual({ steps: 20, model: 'a' });
    await s.setBanned('discord', 'u', true);
    expect(s.isBanned('discord', 'u')).toBe(true);
    expect(s.isBanned('slack', 'u')).toBe(false);
    expect(saved).toHaveLength(3);
  });
});

describe('throttled sink', () => {
  it('sends at most one progress per interval, newest wins, final always last', async () => {
    const sent: { at: number; text: string }[] = [];
    const sink = new ThrottledSink(async (m) => void sent.push({ at: Date.now(), text: m.lines[0] ?? '' }), 100);
    const t0 = Date.now();
    const req = parseRequest({ model: 'm', prompt: 'p', seed: '1' });
    for (let s = 1; s <= 20; s++) {
      sink.push(progressMessage(req, s, 20));
      await new Promise((r) => setTimeout(r, 10));
    }
    await sink.finish(errorMessage('done'));
    expect(sent.length - 1).toBeLessThanOrEqual(Math.ceil((Date.now() - t0) / 100));
    expect(sent.length - 1).toBeLessThan(10);
    expect(sent.at(-1)?.text).toContain('done');
    for (let k = 1; k < sent.length - 1; k++) expect((sent[k]?.at ?? 0) - (sent[k - 1]?.at ?? 0)).toBeGreaterThanOrEqual(95);
  });
});

describe('previewOf', () => {
  it('is the one picture of a progress message, nothing for results, errors or picture-less updates', () => {
    const req = parseRequest({ model: 'm', prompt: 'p', seed: '1' });
    const png = new Uint8Array([1, 2, 3]);
    expect(previewOf(progressMessage(req, 3, 20, png))).toBe(png);
    expect(previewOf(progressMessage(req, 3, 20))).toBeUndefined();
    expect(previewOf({ ...progressMessage(req, 3, 20, png), final: true })).toBeUndefined();
    expect(previewOf({ ...progressMessage(req, 3, 20, png), kind: 'result' })).toBeUndefined();
    expect(previewOf(errorMessage('no'))).toBeUndefined();
  });
});

describe('result files', () => {
  it('uploads one grid when it fits, falls back to lossy, then splits', async () => {
    const pngs = await Promise.all([0, 1, 2, 3].map(async (i) => new Uint8Array(await sharp({ create: { width: 160, height: 160, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128 + i, sigma: 60 } } }).png().toBuffer())));
    const roomy = await uploadFiles(pngs, 10 * 1024 * 1024);
    expect(roomy.files.map((f) => f.format)).toEqual(['png']);
    const pngSize = roomy.files[0]?.bytes.byteLength ?? 0;
    const lossy = await uploadFiles(pngs, Math.floor(pngSize * 0.8));
    expect(lossy.files).toHaveLength(1);
    expect(lossy.files[0]?.format).not.toBe('png');
    const oneJpeg = (await sharp(pngs[0]).jpeg({ quality: 50, mozjpeg: true }).toBuffer()).byteLength;
    const split = await uploadFiles(pngs, Math.ceil(oneJpeg * 1.5));
    expect(split.files.length + split.dropped).toBe(4);
    expect(split.files.length).toBeGreaterThan(1);
  });
  it('cuts grid cells back out in reading order', async () => {
    const cells = await Promise.all([10, 60, 110, 160].map((s) => solidPng(32, 32, s)));
    const { files } = await uploadFiles(cells, 10 * 1024 * 1024);
    const third = await cropCell(files[0]?.bytes ?? new Uint8Array(), 4, 2);
    const px = await sharp(third).raw().toBuffer({ resolveWithObject: true });
    expect([px.info.width, px.info.height, px.data[0]]).toEqual([32, 32, 110]);
  });
});
