/**
 * ModelInfo for the entries of the engine's models file: family and role from each folder's model_index.json
 * (when the bot runs where the folders are), default size from the entry's defaults.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfigEntry, ModelsConfig } from '../../engine/models-file.js';
import { guessModelInfo, type ModelInfo, type ModelRole } from './models.js';

const PIPELINES: Record<string, { family: string; role: ModelRole }> = {
  StableDiffusionPipeline: { family: 'sd15', role: 'base' },
  StableDiffusionImg2ImgPipeline: { family: 'sd15', role: 'base' },
  StableDiffusionInpaintPipeline: { family: 'sd15', role: 'inpaint' },
  StableDiffusionControlNetPipeline: { family: 'sd15', role: 'controlnet' },
  StableDiffusionControlNetImg2ImgPipeline: { family: 'sd15', role: 'controlnet' },
  // a ControlNet inpaint folder's UNet may be the 9-channel inpaint one, which plain jobs cannot use
  StableDiffusionControlNetInpaintPipeline: { family: 'sd15', role: 'inpaint' },
  StableDiffusionDepth2ImgPipeline: { family: 'sd2', role: 'depth' },
  StableDiffusionUpscalePipeline: { family: 'sd2', role: 'upscaler' },
  StableUnCLIPImg2ImgPipeline: { family: 'sd2', role: 'variation' },
  StableDiffusionImageVariationPipeline: { family: 'sd15', role: 'variation' },
  StableDiffusionXLPipeline: { family: 'sdxl', role: 'base' },
  StableDiffusionXLImg2ImgPipeline: { family: 'sdxl', role: 'refiner' },
  StableDiffusionXLInpaintPipeline: { family: 'sdxl', role: 'inpaint' },
  StableDiffusionXLControlNetPipeline: { family: 'sdxl', role: 'controlnet' },
  StableDiffusionXLControlNetImg2ImgPipeline: { family: 'sdxl', role: 'controlnet' },
  StableDiffusionXLControlNetInpaintPipeline: { family: 'sdxl', role: 'inpaint' },
  StableDiffusion3Pipeline: { family: 'sd3', role: 'base' },
  StableDiffusion3ControlNetPipeline: { family: 'sd3', role: 'controlnet' },
  StableDiffusion3InpaintPipeline: { family: 'sd3', role: 'inpaint' },
};

function fromFolder(entry: ModelConfigEntry): ModelInfo {
  const guess = guessModelInfo(entry.id);
  const index = join(entry.dir, 'model_index.json');
  if (!existsSync(index)) return guess;
  try {
    const cls = (JSON.parse(readFileSync(index, 'utf8')) as { _class_name?: string })._class_name ?? '';
    const known = PIPELINES[cls];
    // SD 2.x and 1.x share pipeline classes; the id's guess tells them apart where it can.
    return known ? { id: entry.id, family: known.family === 'sd15' && guess.family === 'sd2' ? 'sd2' : known.family, role: known.role } : guess;
  } catch {
    return guess;
  }
}

export function modelInfosFromConfig(config: ModelsConfig): ModelInfo[] {
  return config.models.map((entry) => {
    const folder = fromFolder(entry);
    // ControlNets attached in the models file make the model the one ControlNet jobs go to (it loads only if they fit).
    const info: ModelInfo = entry.controlnets?.length && folder.role === 'base' ? { ...folder, role: 'controlnet' } : folder;
    const d = entry.defaults;
    return {
      ...info,
      ...(d?.width && d.height ? { defaultSize: { width: d.width, height: d.height } } : {}),
      ...(config.defaultModel === entry.id ? { isDefault: true } : {}),
    };
  });
}
