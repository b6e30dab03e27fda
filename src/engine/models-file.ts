/**
 * The models file: which model folders an engine worker serves, under which ids, with per-model defaults.
 *
 * ```json
 * {
 *   "default": "sd15",
 *   "models": [
 *     { "dir": "/models/sd15", "defaults": { "sampler": "euler_a", "steps": 25, "cfg": 7, "width": 512, "height": 512 } },
 *     { "id": "xl", "dir": "sdxl-base", "load": false },
 *     { "id": "sd15-cn", "dir": "/models/sd15-cn-unet", "controlnets": ["cn/canny", { "id": "depth", "dir": "cn/sd15-depth" }],
 *       "depthEstimator": "/models/sd2-depth" }
 *   ]
 * }
 * ```
 * - `id` defaults to the folder name; `dir` is relative to the file's folder unless absolute.
 * - `default` names the model used when a request names none; without it, the first model.
 * - `load: false` lists a model an admin can load later without loading it at start.
 * - `defaults` fill the request fields a user left unset (sampler, steps, guidance, width, height).
 * - `controlnets` attaches ControlNet folders published apart from the base model (diffusers ControlNetModel layout:
 *   `config.json` + `model.onnx`); jobs name them by id (default: the folder name). Each is checked against the
 *   model's UNet when the model loads. A control naming none uses the folder's own `controlnet/`, else the first.
 * - `depthEstimator` names a folder with `depth_estimator/` + `feature_extractor/` (an SD2-depth folder works) for the
 *   ControlNet depth preprocessor; without it the model folder's own estimator is used, if it has one.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { z } from 'zod';
import { SAMPLERS, type GenerationRequest } from '../queue/job.js';
import type { ModelEntry } from './engine.js';

const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

const defaultsSchema = z
  .object({
    sampler: z.enum(SAMPLERS).optional(),
    steps: z.number().int().min(1).max(150).optional(),
    cfg: z.number().min(0).max(30).optional(),
    width: z.number().int().min(8).max(4096).multipleOf(8).optional(),
    height: z.number().int().min(8).max(4096).multipleOf(8).optional(),
  })
  .strict();
export type ModelDefaults = z.infer<typeof defaultsSchema>;

const entrySchema = z
  .object({
    id: z.string().regex(MODEL_ID, 'model id: letters, digits, ".", "_" or "-"').optional(),
    dir: z.string().min(1),
    load: z.boolean().default(true),
    defaults: defaultsSchema.optional(),
    controlnets: z
      .array(z.union([z.string().min(1), z.object({ id: z.string().regex(MODEL_ID, 'ControlNet id: letters, digits, ".", "_" or "-"').optional(), dir: z.string().min(1) }).strict()]))
      .optional(),
    depthEstimator: z.string().min(1).optional(),
  })
  .strict();

const fileSchema = z
  .object({
    default: z.string().optional(),
    models: z.array(entrySchema).min(1, 'the models file lists no models'),
  })
  .strict();

export interface ModelConfigEntry extends ModelEntry {
  /** Load at worker start (false: available to an admin "load" command only). */
  load: boolean;
  defaults?: ModelDefaults;
}

export interface ModelsConfig {
  models: ModelConfigEntry[];
  defaultModel: string | null;
}

export function idFromDir(dir: string): string {
  const id = basename(resolve(dir));
  if (!MODEL_ID.test(id)) {
    throw new Error(`model folder name "${id}" cannot be a model id; name it in a models file ("id": "...")`);
  }
  return id;
}

/** Parses models-file JSON; relative dirs resolve against `baseDir`. */
export function parseModelsFile(json: unknown, baseDir: string): ModelsConfig {
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(`invalid models file: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  const models = parsed.data.models.map((m): ModelConfigEntry => {
    const dir = resolve(baseDir, m.dir);
    const id = m.id ?? idFromDir(dir);
    const controlnets = m.controlnets?.map((c) => {
      const cdir = resolve(baseDir, typeof c === 'string' ? c : c.dir);
      return { id: (typeof c === 'string' ? undefined : c.id) ?? idFromDir(cdir), dir: cdir };
    });
    const ids = new Set<string>();
    for (const c of controlnets ?? []) {
      if (ids.has(c.id)) throw new Error(`invalid models file: model "${id}" has two ControlNets with the id "${c.id}"; give them ids`);
      ids.add(c.id);
    }
    return {
      id, dir, load: m.load,
      ...(m.defaults ? { defaults: m.defaults } : {}),
      ...(controlnets ? { controlnets } : {}),
      ...(m.depthEstimator ? { depthEstimator: resolve(baseDir, m.depthEstimator) } : {}),
    };
  });
  const seen = new Set<string>();
  for (const m of models) {
    if (seen.has(m.id)) throw new Error(`invalid models file: model id "${m.id}" appears twice`);
    seen.add(m.id);
  }
  const def = parsed.data.default ?? models[0]!.id;
  if (!seen.has(def)) throw new Error(`invalid models file: default model "${def}" is not listed`);
  return { models, defaultModel: def };
}

export function loadModelsFile(path: string): ModelsConfig {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read models file ${path}: ${(e as Error).message}`);
  }
  return parseModelsFile(json, dirname(resolve(path)));
}

/**
 * The worker's models: `--model DIR` folders (loaded, ids from folder names) plus the models file's entries. A folder
 * given both ways keeps the file's id and defaults. The default is the file's, else the first model.
 */
export function resolveModels(dirs: readonly string[], file: ModelsConfig | null): ModelsConfig {
  const models: ModelConfigEntry[] = file ? file.models.map((m) => ({ ...m })) : [];
  for (const d of dirs) {
    const dir = resolve(d);
    const known = models.find((m) => m.dir === dir);
    if (known) {
      known.load = true;
      continue;
    }
    const id = idFromDir(dir);
    if (models.some((m) => m.id === id)) throw new Error(`two models would have the id "${id}"; name them in a models file`);
    models.push({ id, dir, load: true });
  }
  return { models, defaultModel: file?.defaultModel ?? models[0]?.id ?? null };
}

/** Fills the fields a user left unset (null) from the model's defaults. */
export function applyModelDefaults(request: GenerationRequest, defaults: ModelDefaults | undefined): GenerationRequest {
  if (!defaults) return request;
  return {
    ...request,
    sampler: request.sampler ?? defaults.sampler ?? null,
    steps: request.steps ?? defaults.steps ?? null,
    guidance: request.guidance ?? defaults.cfg ?? null,
    width: request.width ?? defaults.width ?? null,
    height: request.height ?? defaults.height ?? null,
  };
}
