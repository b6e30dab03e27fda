/** The tiny model folder shipped in the repository so the whole flow runs offline. Its pictures are noise. */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
export const DEMO_MODEL = join(PROJECT_ROOT, 'test', 'fixtures', 'models', 'tiny-sd15');
export const DEMO_NOTICE = 'Demo model: tiny-sd15 is a 64×64 smoke-test model shipped for offline tests; its pictures are noise. '
  + 'Start with --model DIR or --models-file FILE pointing at a real ONNX export for real pictures.';
