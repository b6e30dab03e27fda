/**
 * SDXL ControlNets (StableDiffusionXLControlNetPipeline, diffusers 0.30.3): the folder's own controlnet/ and the same
 * graph attached from outside, against scripts/fixtures/gen_sdxl_controlnet.py; load-time checks for ControlNets made
 * for another family.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelInfosFromConfig } from '../../src/bot/core/model-info.js';
import { createEngine } from '../../src/engine/create-engine.js';
import { loadModel } from '../../src/engine/loaded-model.js';
import type { PipelineOutput } from '../../src/engine/pipelines/types.js';
import { parseRequest, type GenerationRequestInput } from '../../src/queue/job.js';
import {
  caseRequest, controlCaseRequest, fixtureFile, FIXTURE_MODELS, flatten, loadCases, runCase, worstRatio, type CaseControl, type FixtureCase,
} from '../helpers/fixture-cases.js';

const XLCN = join(FIXTURE_MODELS, 'tiny-sdxl-controlnet');



describe('SDXL ControlNets reproduce diffusers (StableDiffusionXLControlNetPipeline)', async () => {
  const engine = await createEngine();
  beforeAll(async () => {
    // The folder's own controlnet/ attached once more under an id: the path of a ControlNet published on its own.
    await engine.loadModel({ id: 'tiny-sdxl-controlnet', dir: XLCN, controlnets: [{ id: 'xl-edges', dir: join(XLCN, 'controlnet') }] });
  });
  afterAll(() => engine.close());

  const cases = loadCases('tiny-sdxl-controlnet');
  it('has the reference cases', () => expect(cases.map((c) => c.id)).toEqual(['sdxlcn_edges', 'sdxlcn_wide_window', 'sdxlcn_two']));

  for (const c of cases) {
    it(`${c.id}: latents and images`, async () => {
      await runCase(engine, c, parseRequest(controlCaseRequest(c, 'tiny-sdxl-controlnet')));
    });
  }

  it('the attached ControlNet and the single-control fields give the same latents; the control changes the picture', async () => {
    const c = cases.find((x) => x.id === 'sdxlcn_wide_window')!;
    await runCase(engine, c, parseRequest(controlCaseRequest(c, 'tiny-sdxl-controlnet', 'xl-edges')));
    const k = (c['controls'] as CaseControl[])[0]!;
    let out: PipelineOutput | undefined;
    await engine.runJob(parseRequest({
      ...caseRequest(c), model: 'tiny-sdxl-controlnet', controlImage: fixtureFile(k.image), controlScale: k.conditioning_scale,
      controlStart: k.control_guidance_start, controlEnd: k.control_guidance_end,
    }), { onOutput: (o) => (out = o) });
    expect(worstRatio(out!.latents.data, flatten(c.outputs.latents), 2e-3, 1e-3)).toBeLessThanOrEqual(1);
    // No control: the residual UNet runs with zero residuals, which must be far from the controlled reference.
    let plain: PipelineOutput | undefined;
    await engine.runJob(parseRequest({ ...caseRequest(c), kind: 'txt2img', model: 'tiny-sdxl-controlnet', controlImage: null, controls: [] }), { onOutput: (o) => (plain = o) });
    expect(worstRatio(plain!.latents.data, flatten(c.outputs.latents), 2e-3, 1e-3)).toBeGreaterThan(1);
  });
});

describe('SDXL ControlNets: load-time checks', () => {
  it('refuses an SD 1.x ControlNet on an SDXL model, saying it is not an SDXL ControlNet', async () => {
    await expect(loadModel(XLCN, ['cpu'], { controlnets: [{ id: 'sd15', dir: join(FIXTURE_MODELS, 'tiny-sd15-controlnet-2') }] }))
      .rejects.toThrow(/ControlNet "sd15" \(.*tiny-sd15-controlnet-2\) cannot be used with tiny-sdxl-controlnet \(sdxl\): it has no "text_embeds" \/ "time_ids" inputs, so it is not an SDXL ControlNet/);
  });

  it('refuses an SDXL ControlNet on an SD 1.x model (text embedding width)', async () => {
    await expect(loadModel(join(FIXTURE_MODELS, 'tiny-sd15-controlnet'), ['cpu'], { controlnets: [{ id: 'xl', dir: join(XLCN, 'controlnet') }] }))
      .rejects.toThrow(/ControlNet "xl" .* does not fit tiny-sd15-controlnet: it takes text embeddings of width 96, the UNet's are 32/);
  });

  it('refuses an SDXL ControlNet on an SDXL UNet without residual inputs', async () => {
    await expect(loadModel(join(FIXTURE_MODELS, 'tiny-sdxl'), ['cpu'], { controlnets: [{ id: 'xl', dir: join(XLCN, 'controlnet') }] }))
      .rejects.toThrow(/tiny-sdxl: its UNet .* takes no ControlNet residuals/);
  });
});

describe('SDXL ControlNet folders in the bot', () => {
  it('a StableDiffusionXLControlNetPipeline folder is the SDXL family\'s ControlNet model', () => {
    const [info] = modelInfosFromConfig({ models: [{ id: 'xlcn', dir: XLCN, load: true }], defaultModel: 'xlcn' });
    expect(info).toMatchObject({ family: 'sdxl', role: 'controlnet' });
  });

  it('ControlNet img2img folders are ControlNet models, ControlNet inpaint folders inpaint models', () => {
    const folder = (cls: string): string => {
      const dir = mkdtempSync(join(tmpdir(), 'sdbot-cls-'));
      writeFileSync(join(dir, 'model_index.json'), JSON.stringify({ _class_name: cls }));
      return dir;
    };
    const infos = modelInfosFromConfig({
      models: [
        { id: 'a', dir: folder('StableDiffusionXLControlNetImg2ImgPipeline'), load: true },
        { id: 'b', dir: folder('StableDiffusionXLControlNetInpaintPipeline'), load: true },
        { id: 'c', dir: folder('StableDiffusionControlNetImg2ImgPipeline'), load: true },
        { id: 'd', dir: folder('StableDiffusionControlNetInpaintPipeline'), load: true },
      ],
      defaultModel: 'a',
    });
    expect(infos.map((i) => [i.family, i.role])).toEqual([
      ['sdxl', 'controlnet'], ['sdxl', 'inpaint'], ['sd15', 'controlnet'], ['sd15', 'inpaint'],
    ]);
  });
});
