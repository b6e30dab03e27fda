/** Legacy int64-timestep UNets load with a float32 timestep (src/engine/onnx/float-input.ts). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { retypeInt64InputAsFloat } from '../../src/engine/onnx/float-input.js';
import { ModelGraph } from '../../src/engine/onnx/session.js';
import { FIXTURE_MODELS } from '../helpers/fixture-cases.js';

const sd2vUnet = join(FIXTURE_MODELS, 'tiny-sd2-v', 'unet', 'model.onnx');

describe('int64 timestep retyped as float32', () => {
  it('patches only the elem_type byte of the named int64 input', () => {
    const bytes = new Uint8Array(readFileSync(sd2vUnet));
    const out = retypeInt64InputAsFloat(bytes, 'timestep')!;
    expect(out).not.toBeNull();
    expect(out.length).toBe(bytes.length);
    let changed = 0;
    for (let i = 0; i < bytes.length; i++) if (bytes[i] !== out[i]) changed++;
    expect(changed).toBe(1);
    expect(retypeInt64InputAsFloat(bytes, 'sample')).toBeNull(); // float already
    expect(retypeInt64InputAsFloat(bytes, 'no_such_input')).toBeNull();
  });

  it('tiny-sd2-v loads with a float32 [batch] timestep that carries fractions; float graphs stay as they are', async () => {
    const g = await ModelGraph.loadWithFloatInput(sd2vUnet, 'timestep');
    expect(g.input('timestep')).toMatchObject({ type: 'float32', shape: ['batch_size'] });
    const x = { data: new Float32Array(4 * 8 * 8), dims: [1, 4, 8, 8] };
    const ctx = { data: new Float32Array(77 * 32).fill(0.1), dims: [1, 77, 32] };
    const at = async (t: number) => (await g.run({ sample: x, timestep: { data: Float32Array.of(t), dims: [1] }, encoder_hidden_states: ctx }))['out_sample']!.data;
    const [a, b] = [await at(199), await at(199.8)];
    expect(a.some((v, i) => v !== b[i])).toBe(true);
    await g.release();
    const sd15 = await ModelGraph.loadWithFloatInput(join(FIXTURE_MODELS, 'tiny-sd15', 'unet', 'model.onnx'), 'timestep');
    expect(sd15.input('timestep').type).toBe('float32');
    await sd15.release();
  });
});
