/** `sdbot generate` as an operator runs it: files named by seed, a JSON summary line, images equal to diffusers'. */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURE_MODELS, maxAbsDiff, rawRgb } from '../helpers/fixture-cases.js';
import { readPngParameters } from '../../src/engine/image/index.js';
import { readFileSync } from 'node:fs';
import { requestFromOptions } from '../../src/cli/generate.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const out = mkdtempSync(join(tmpdir(), 'sdbot-gen-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

function sdbot(args: string[]) {
  return run(process.execPath, [join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(ROOT, 'src', 'cli.ts'), ...args], { cwd: ROOT });
}

describe('sdbot generate', () => {
  it('writes <seed+i>.png matching the reference and prints a JSON summary', async () => {
    const { stdout } = await sdbot([
      'generate', '--model', join(FIXTURE_MODELS, 'tiny-sd15'), '--prompt', 'a photo of a cat', '--seed', '42',
      '--steps', '10', '--cfg', '7.5', '--sampler', 'euler_a', '--width', '64', '--height', '64', '--count', '2', '--out', out,
    ]);
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as { seeds: string[]; files: string[]; timings: Record<string, number> };
    expect(summary.seeds).toEqual(['42', '43']);
    expect(summary.files).toEqual([join(out, '42.png'), join(out, '43.png')]);
    for (const k of ['loadMs', 'textMs', 'denoiseMs', 'unetMs', 'decodeMs', 'totalMs']) expect(summary.timings[k]).toBeGreaterThanOrEqual(0);
    for (let i = 0; i < 2; i++) {
      const ours = await rawRgb(summary.files[i]!);
      const ref = await rawRgb(join(FIXTURE_MODELS, `sd15_txt2img_euler_a_${i}.png`));
      expect(maxAbsDiff(ours.data, ref.data)).toBeLessThanOrEqual(2);
    }
    const params = readPngParameters(readFileSync(summary.files[0]!));
    expect(params).toMatch(/^a photo of a cat\n/);
    expect(params).toMatch(/Steps: 10, Sampler: Euler a, .*CFG scale: 7.5, Seed: 42, Size: 64x64/);
  });

  it('--mode variation on a stable unCLIP folder: no prompt needed, --noise-level reaches the embedding', async () => {
    const { stdout } = await sdbot([
      'generate', '--model', join(FIXTURE_MODELS, 'tiny-sd21-unclip'), '--mode', 'variation', '--init-image', join(FIXTURE_MODELS, 'init_64.png'),
      '--noise-level', '600', '--seed', '3', '--steps', '8', '--cfg', '1', '--width', '48', '--height', '64', '--out', out,
    ]);
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as { files: string[] };
    const ours = await rawRgb(summary.files[0]!);
    const ref = await rawRgb(join(FIXTURE_MODELS, 'unclip_nocfg_nl600_0.png'));
    expect(maxAbsDiff(ours.data, ref.data)).toBeLessThanOrEqual(2);
    expect(readPngParameters(readFileSync(summary.files[0]!))).toMatch(/Noise level: 600/);
    const noPrompt = sdbot(['generate', '--model', join(FIXTURE_MODELS, 'tiny-sd15'), '--out', out]);
    await expect(noPrompt).rejects.toMatchObject({ stderr: expect.stringMatching(/--prompt is required/) });
  });

  it('fails with a clear message on a bad size', async () => {
    const p = sdbot(['generate', '--model', join(FIXTURE_MODELS, 'tiny-sd15'), '--prompt', 'x', '--width', '60', '--height', '64', '--out', out]);
    await expect(p).rejects.toMatchObject({ stderr: expect.stringMatching(/multiples of 8/) });
    expect(existsSync(join(out, '60.png'))).toBe(false);
  });

  it('--zoom-out on an inpaint folder reproduces the diffusers outpaint case', async () => {
    const { stdout } = await sdbot([
      'generate', '--model', join(FIXTURE_MODELS, 'tiny-sd15-inpaint'), '--prompt', 'a yellow flower in a wide field', '--seed', '11',
      '--steps', '10', '--cfg', '7.5', '--sampler', 'euler_a', '--count', '2', '--init-image', join(FIXTURE_MODELS, 'init_64.png'),
      '--zoom-out', '2', '--out', out,
    ]);
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as { files: string[]; width: number; height: number; notes: string[] };
    expect([summary.width, summary.height]).toEqual([64, 64]);
    expect(summary.notes.join(' ')).toMatch(/zoom out 2x.*128×128 canvas/);
    for (let i = 0; i < 2; i++) {
      const ours = await rawRgb(summary.files[i]!);
      const ref = await rawRgb(join(FIXTURE_MODELS, `outpaint_zoom2_${i}.png`));
      expect(maxAbsDiff(ours.data, ref.data)).toBeLessThanOrEqual(2);
    }
  });

  it('--outpaint / --pan / --zoom-out become the job\'s outpaint spec (inpaint, strength 1)', () => {
    const base = { model: '/m/tiny', prompt: 'p', seed: '1', out: '/tmp', initImage: '/x.png' };
    const pads = requestFromOptions({ ...base, outpaint: { left: 0, right: 64, top: 8, bottom: 0 }, outpaintOverlap: 0 });
    expect([pads.kind, pads.strength, pads.maskImage]).toEqual(['inpaint', 1, null]);
    expect(pads.outpaint).toEqual({ left: 0, right: 64, top: 8, bottom: 0, overlap: 0 });
    expect(requestFromOptions({ ...base, pan: 'up' }).outpaint).toEqual({ pan: 'up', overlap: 8 });
    expect(requestFromOptions({ ...base, zoomOut: 1.5, strength: 0.9 })).toMatchObject({ outpaint: { zoom: 1.5, overlap: 8 }, strength: 0.9 });
    expect(() => requestFromOptions({ ...base, pan: 'left', zoomOut: 2 })).toThrow(/one of/);
    expect(() => requestFromOptions({ ...base, initImage: undefined, pan: 'left' })).toThrow(/--init-image/);
    expect(() => requestFromOptions({ ...base, outpaint: { left: 4, right: 0, top: 0, bottom: 0 } })).toThrow(/multiple of 8/);
  });
});
