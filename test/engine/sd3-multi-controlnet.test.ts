/**
 * Several SD3 ControlNets at once (SD3MultiControlNetModel, diffusers 0.30.3: tiny-sd3-controlnet-multi.cases.json),
 * SD3 ControlNets attached from outside the model folder, and SD3.5-style ControlNet configs as diffusers 0.32.0 runs
 * them (tiny-sd35-controlnet.cases.json), against scripts/fixtures/gen_sd3_multi_controlnet.py and gen_sd35_controlnet.py.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/create-engine.js';
import { loadModel } from '../../src/engine/loaded-model.js';
import { blockResiduals, controlLatents } from '../../src/engine/pipelines/sd3-controlnet.js';
import { resolveJob } from '../../src/engine/resolve-job.js';
import { TorchGenerator } from '../../src/engine/sampling/torch-rng.js';
import { parseRequest, type GenerationRequestInput } from '../../src/queue/job.js';
import {
  caseRequest, controlCaseRequest, FIXTURE_MODELS, flatten, loadCases, maxAbsDiff, rawRgb, runCase, worstRatio, type CaseControl, type FixtureCase,
} from '../helpers/fixture-cases.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SD3CN = join(FIXTURE_MODELS, 'tiny-sd3-controlnet');
const CN2 = join(FIXTURE_MODELS, 'tiny-sd3-controlnet-2');
const CN35 = join(FIXTURE_MODELS, 'tiny-sd35-controlnet');
const tmp = mkdtempSync(join(tmpdir(), 'sdbot-sd3mcn-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));


/** The generator also writes the ControlNet condition it computed from each control image. */
interface Sd3CaseControl extends CaseControl {
  controlnet_cond_shape: number[];
  controlnet_cond: unknown;
}

const controlsOf = (c: FixtureCase) => c['controls'] as Sd3CaseControl[];



describe('SD3 ControlNets reproduce diffusers: several at once (0.30.3) and SD3.5 configs (0.32.0)', async () => {
  const engine = await createEngine();
  beforeAll(async () => {
    await engine.loadModel({
      id: 'sd3cn', dir: SD3CN,
      controlnets: [{ id: 'tiny-sd3-controlnet-2', dir: CN2 }, { id: 'tiny-sd35-controlnet', dir: CN35 }],
    });
  });
  afterAll(() => engine.close());

  const suites = [
    { file: 'tiny-sd3-controlnet-multi', version: '0.30.3' },
    { file: 'tiny-sd35-controlnet', version: '0.32.0' },
  ];
  for (const s of suites) {
    for (const c of loadCases(s.file)) {
      it(`${c.id} (diffusers ${s.version}): latents and images`, async () => {
        expect(c['diffusers_version']).toBe(s.version);
        await runCase(engine, c, parseRequest(controlCaseRequest(c, 'sd3cn')));
      });
    }
  }

  it('control latents: one draw per control from the seed-initialised RNG, in order; SD3.5 configs subtract the VAE shift', async () => {
    const model = engine.getModel('sd3cn')!;
    for (const s of suites) {
      for (const c of loadCases(s.file)) {
        const { params } = await resolveJob(model, parseRequest(controlCaseRequest(c, 'sd3cn')));
        const rng = new TorchGenerator(BigInt(c.seed));
        const shift = s.version === '0.32.0' ? model.info.shiftFactor : null;
        for (const [k, ref] of controlsOf(c).entries()) {
          const got = await controlLatents(model.vaeEncoder!, params.controls![k]!.image, ref.controlnet_cond_shape[0]!, rng, model.info.scalingFactor, shift);
          expect(got.dims).toEqual(ref.controlnet_cond_shape);
          expect(worstRatio(got.data, flatten(ref.controlnet_cond), 1e-4, 1e-4)).toBeLessThanOrEqual(1);
        }
      }
    }
  });

  it('the second ControlNet changes the picture', async () => {
    const c = loadCases('tiny-sd3-controlnet-multi').find((x) => x.id === 'sd3mcn_two')!;
    const req = controlCaseRequest(c, 'sd3cn');
    const both = await engine.runJob(parseRequest(req), {});
    const firstOnly = await engine.runJob(parseRequest({ ...req, controls: req.controls!.slice(0, 1) }), {});
    expect(maxAbsDiff((await rawRgb(both.images[0]!.png)).data, (await rawRgb(firstOnly.images[0]!.png)).data)).toBeGreaterThan(10);
  });

  it('refuses ControlNets that read the prompt tokens together with ones that do not (diffusers fails there too)', async () => {
    const c = loadCases('tiny-sd3-controlnet-multi').find((x) => x.id === 'sd3mcn_two')!;
    const req = controlCaseRequest(c, 'sd3cn');
    const mixed = { ...req, controls: [req.controls![0]!, { ...req.controls![1]!, controlnet: 'tiny-sd35-controlnet' }] };
    await expect(engine.runJob(parseRequest(mixed), {})).rejects.toThrow(/cannot run together/);
  });
});

describe('SD3 ControlNet attachment checks', () => {
  /** A folder with the files of `src` and `files` (name → path) on top. */
  function folderWith(name: string, src: string, files: Record<string, string | { json: unknown }>): string {
    const dir = join(tmp, name);
    mkdirSync(dir);
    for (const entry of readdirSync(src)) if (!(entry in files)) symlinkSync(join(src, entry), join(dir, entry));
    for (const [entry, what] of Object.entries(files)) {
      if (typeof what === 'string') copyFileSync(what, join(dir, entry));
      else writeFileSync(join(dir, entry), JSON.stringify(what.json));
    }
    return dir;
  }

  it('an SD3 ControlNet on a transformer without residual inputs fails at load, naming both', async () => {
    await expect(loadModel(join(FIXTURE_MODELS, 'tiny-sd3'), ['cpu'], { controlnets: [{ id: 'cn2', dir: CN2 }] }))
      .rejects.toThrow(/ControlNet "cn2" \(.*tiny-sd3-controlnet-2\) cannot be used with tiny-sd3: its transformer .* takes no ControlNet residuals/);
  });

  it('a UNet ControlNet on an SD3 model and an SD3 ControlNet on an SD 1.5 model fail at load, saying which kind fits', async () => {
    await expect(loadModel(SD3CN, ['cpu'], { controlnets: [{ id: 'sd15', dir: join(FIXTURE_MODELS, 'tiny-sd15-controlnet-2') }] }))
      .rejects.toThrow(/ControlNet "sd15" .* cannot be used with tiny-sd3-controlnet \(sd3\): .*expected an input named "hidden_states"/);
    await expect(loadModel(join(FIXTURE_MODELS, 'tiny-sd15-controlnet'), ['cpu'], { controlnets: [{ id: 'sd3', dir: CN2 }] }))
      .rejects.toThrow(/ControlNet "sd3" .* cannot be used with tiny-sd15-controlnet \(sd\): .*expected an input named "sample"/);
  });

  it('a config saying "no text tokens" on a graph that takes them fails at load', async () => {
    const config = JSON.parse(readFileSync(join(CN2, 'config.json'), 'utf8')) as Record<string, unknown>;
    const dir = folderWith('cn2-no-text', CN2, { 'config.json': { json: { ...config, joint_attention_dim: null } } });
    await expect(loadModel(SD3CN, ['cpu'], { controlnets: [{ id: 'x', dir }] })).rejects.toThrow(/joint_attention_dim null .* has an encoder_hidden_states input/);
  });

  it('reads the ControlNet config: none or 0.30.3 keys keep 0.30.3 behaviour, SD3.5 keys switch to 0.32.0', async () => {
    const m = await loadModel(SD3CN, ['cpu'], { controlnets: [{ id: 'cn2', dir: CN2 }, { id: 'cn35', dir: CN35 }] });
    try {
      expect(m.sd3ControlNetConfigs.get(m.controlnet!)).toEqual({ textTokens: true, promptPooled: false, since032: false });
      expect(m.sd3ControlNetConfigs.get(m.controlnets.get('cn2')!)).toEqual({ textTokens: true, promptPooled: false, since032: false });
      expect(m.sd3ControlNetConfigs.get(m.controlnets.get('cn35')!)).toEqual({ textTokens: false, promptPooled: true, since032: true });
    } finally {
      await m.release();
    }
  });
});

describe('SD3 ControlNet block mapping', () => {
  const res = (layers: number) => ({ inputs: Array.from({ length: layers - 1 }, (_, i) => ({ name: `b.${i}`, index: i })), layers, inner: 32, patch: 2 });
  it("0.30.3: k = i // (L // K); 0.32.0: k = int(i / (L / K)) (diffusers' SD3Transformer2DModel.forward)", () => {
    expect(blockResiduals(res(4), 2, false, 'x').map((f) => f.k)).toEqual([0, 0, 1]);
    expect(blockResiduals(res(4), 3, false, 'x').map((f) => f.k)).toEqual([0, 1, 2]);
    expect(blockResiduals(res(4), 3, true, 'x').map((f) => f.k)).toEqual([0, 0, 1]);
    expect(blockResiduals(res(24), 5, true, 'x').map((f) => f.k)).toEqual(Array.from({ length: 23 }, (_, i) => Math.floor(i / 4.8)));
  });

  it('0.30.3 fails where its interval leaves a block without a residual, as diffusers indexes past the list', () => {
    expect(() => blockResiduals(res(6), 4, false, 'cn')).toThrow(/cn: 4 ControlNet blocks cannot feed transformer block 4 of 6/);
    expect(blockResiduals(res(6), 4, true, 'cn').map((f) => f.k)).toEqual([0, 0, 1, 2, 2]);
  });
});

describe('sdbot generate with several SD3 ControlNets', () => {
  it('repeated --control-image / --controlnet reproduce the multi-ControlNet reference', async () => {
    const c = loadCases('tiny-sd3-controlnet-multi').find((x) => x.id === 'sd3mcn_two')!;
    const [a, b] = controlsOf(c);
    const out = join(tmp, 'cli');
    const { stdout } = await promisify(execFile)(process.execPath, [
      join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(ROOT, 'src', 'cli.ts'), 'generate',
      '--model', SD3CN, '--prompt', c.prompt, '--seed', String(c.seed), '--count', String(c.batch_size),
      '--steps', String(c.steps), '--cfg', String(c.guidance_scale), '--width', String(c.width), '--height', String(c.height),
      '--max-sequence-length', String(c['max_sequence_length']),
      '--control-image', join(FIXTURE_MODELS, a!.image), '--controlnet', 'model',
      '--control-scale', String(a!.conditioning_scale), '--control-start', String(a!.control_guidance_start), '--control-end', String(a!.control_guidance_end),
      '--control-image', join(FIXTURE_MODELS, b!.image), '--controlnet', CN2,
      '--control-scale', String(b!.conditioning_scale), '--control-start', String(b!.control_guidance_start), '--control-end', String(b!.control_guidance_end),
      '--out', out,
    ], { cwd: ROOT });
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as { files: string[] };
    expect(summary.files).toHaveLength(c.batch_size);
    for (let i = 0; i < c.batch_size; i++) {
      const ours = await rawRgb(summary.files[i]!);
      const ref = await rawRgb(join(FIXTURE_MODELS, `${c.id}_${i}.png`));
      expect(maxAbsDiff(ours.data, ref.data)).toBeLessThanOrEqual(2);
    }
  });
});
