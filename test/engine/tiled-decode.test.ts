/** Tiled VAE decoding: same size as a whole decode, identical when one tile covers it, close across blended seams. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelGraph } from '../../src/engine/onnx/session.js';
import { tiledDecode } from '../../src/engine/pipelines/tiled-decode.js';
import { TorchGenerator } from '../../src/engine/sampling/torch-rng.js';
import { FIXTURE_MODELS } from '../helpers/fixture-cases.js';

describe('tiledDecode', async () => {
  const vae = await ModelGraph.load(join(FIXTURE_MODELS, 'tiny-sd15', 'vae_decoder', 'model.onnx'));
  const latents = { data: new TorchGenerator(3n).randn([1, 4, 24, 32]).map((v) => v * 0.5), dims: [1, 4, 24, 32] };
  const whole = (await vae.run({ latent_sample: latents }))['sample']!;

  it('equals a whole decode when one tile covers the latents', async () => {
    const t = await tiledDecode(vae, latents, { tileLatent: 48, scale: 8 });
    expect(t.dims).toEqual(whole.dims);
    expect(t.data).toEqual(whole.data);
  });

  it('stays close to a whole decode with seams blended', async () => {
    const t = await tiledDecode(vae, latents, { tileLatent: 16, scale: 8 });
    expect(t.dims).toEqual([1, 3, 192, 256]);
    let sum = 0;
    for (let i = 0; i < t.data.length; i++) sum += Math.abs(t.data[i]! - whole.data[i]!);
    const mean = sum / t.data.length;
    // a random-weight decoder sees past the tile edge, so seams differ a little; blending keeps the mean small
    expect(mean).toBeLessThan(0.1);
    expect(t.data.every(Number.isFinite)).toBe(true);
  });
});
