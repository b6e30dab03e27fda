/**
 * `sdbot models list | pull REPO_ID [--revision R] | verify DIR`: the model folders this machine has, fetching an
 * ONNX export (diffusers/Optimum layout) from the Hugging Face Hub, and checking a folder with the engine's own
 * loader (every graph opened, its inputs and outputs checked against what the pipeline feeds).
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadModel } from '../engine/loaded-model.js';
import { readModelInfo } from '../engine/model-folder.js';
import { loadModelsFile } from '../engine/models-file.js';
import type { Provider } from '../engine/onnx/session.js';
import { DEFAULT_ENDPOINT, destPath, downloadFile, fileMatches, HubError, isOnnxExportFile, resolveSnapshot, resolveUrl, type HubFile } from './hub.js';
import { DEMO_MODEL } from './demo-model.js';

/** Written next to a pulled model: where it came from and what each file must hash to. */
export const MANIFEST = '.sdbot-pull.json';

interface Manifest {
  repo: string;
  revision: string;
  commit: string;
  files: HubFile[];
}

function readManifest(dir: string): Manifest | null {
  try {
    return JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as Manifest;
  } catch {
    return null;
  }
}

const GIB = 1024 ** 3;
function bytes(n: number): string {
  return n >= GIB ? `${(n / GIB).toFixed(2)} GiB` : n >= 1024 ** 2 ? `${(n / 1024 ** 2).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

/** A one-line progress bar on a terminal; a line per file otherwise (logs, CI). */
class Progress {
  private done = 0;
  private lastDraw = 0;
  private current = '';
  private readonly tty = process.stderr.isTTY === true;

  constructor(private readonly total: number) {}

  file(name: string): void {
    this.current = name;
    if (!this.tty) process.stderr.write(`  ${name}\n`);
  }

  add(n: number): void {
    this.done += n;
    const now = Date.now();
    if (this.tty && now - this.lastDraw > 100) {
      this.lastDraw = now;
      const width = 30;
      const frac = this.total ? Math.min(1, this.done / this.total) : 1;
      const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░');
      process.stderr.write(`\r${bar} ${(frac * 100).toFixed(0).padStart(3)}% ${bytes(this.done)} / ${bytes(this.total)}  ${this.current.slice(-40).padEnd(40)}`);
    }
  }

  end(): void {
    if (this.tty) process.stderr.write('\n');
  }
}

export interface PullOptions {
  revision: string;
  dir: string;
  name?: string;
  all?: boolean;
  verify: boolean;
  endpoint: string;
  token?: string;
  log?: (line: string) => void;
}

export async function pullModel(repo: string, o: PullOptions): Promise<{ dir: string; downloaded: number; skipped: number; resumed: number }> {
  const log = o.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const hub = { endpoint: o.endpoint, ...(o.token ? { token: o.token } : {}) };
  const snapshot = await resolveSnapshot(repo, o.revision, hub);
  const files = snapshot.files.filter((f) => o.all || isOnnxExportFile(f.path));
  if (!files.some((f) => f.path === 'model_index.json')) {
    throw new HubError(`${repo}@${o.revision} has no model_index.json at its top level: it is not a diffusers ONNX pipeline export.`);
  }
  if (!files.some((f) => /\.onnx$/.test(f.path))) throw new HubError(`${repo}@${o.revision} has no .onnx files: pick an ONNX export of the model.`);
  const dir = resolve(o.dir, o.name ?? basename(repo));
  const previous = readManifest(dir);
  const total = files.reduce((s, f) => s + f.size, 0);
  log(`${repo}@${snapshot.commit.slice(0, 12)}: ${files.length} files, ${bytes(total)} → ${dir}`);
  const progress = new Progress(total);
  let downloaded = 0;
  let skipped = 0;
  let resumed = 0;
  try {
    for (const file of files) {
      const dest = destPath(dir, file);
      const known = previous?.files.find((f) => f.path === file.path);
      const sameAsBefore = known && known.size === file.size && known.sha256 === file.sha256 && known.gitSha1 === file.gitSha1;
      if (existsSync(dest) && ((sameAsBefore && statSync(dest).size === file.size) || (await fileMatches(dest, file)))) {
        skipped++;
        progress.add(file.size);
        continue;
      }
      progress.file(file.path);
      const outcome = await downloadFile(resolveUrl(o.endpoint, repo, snapshot.commit, file.path), dest, file, { ...hub, onBytes: (n) => progress.add(n) });
      if (outcome === 'resumed') resumed++;
      downloaded++;
    }
  } finally {
    progress.end();
  }
  const manifest: Manifest = { repo, revision: o.revision, commit: snapshot.commit, files };
  writeFileSync(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  log(`downloaded ${downloaded} file(s)${resumed ? ` (${resumed} resumed)` : ''}, ${skipped} already present`);
  if (o.verify) await verifyModel(dir, ['cpu'], log);
  log(`Serve it: sdbot start --model ${dir}   (or add { "dir": "${dir}" } to your models file)`);
  return { dir, downloaded, skipped, resumed };
}

/** Opens the folder with the engine's loader; throws with the file and tensor at fault. */
export async function verifyModel(dirIn: string, providers: readonly Provider[], log: (line: string) => void): Promise<void> {
  const dir = resolve(dirIn);
  const manifest = readManifest(dir);
  for (const f of manifest?.files ?? []) {
    const path = destPath(dir, f);
    if (!existsSync(path) || statSync(path).size !== f.size) throw new HubError(`${f.path}: missing or not ${f.size} bytes (pulled from ${manifest?.repo}); run the pull again`);
  }
  const model = await loadModel(dir, providers);
  try {
    const i = model.info;
    log(`${dir}: OK — ${i.pipelineClass} (${i.family}), ${i.unetInChannels}-channel denoiser, ${i.predictionType} prediction, default ${i.defaultWidth}×${i.defaultHeight}; components ${[...i.components].sort().join(', ')}`);
  } finally {
    await model.release();
  }
}

function folderSize(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    total += e.isDirectory() ? folderSize(p) : e.isFile() ? statSync(p).size : 0;
  }
  return total;
}

export function describeFolder(dir: string, id: string, note = ''): string {
  if (!existsSync(join(dir, 'model_index.json'))) return `${id}  ${dir}  — missing or not a model folder`;
  try {
    const info = readModelInfo(dir);
    const source = readManifest(dir);
    const from = source ? `  from ${source.repo}@${source.commit.slice(0, 12)}` : '';
    return `${id}  ${info.family}  ${info.defaultWidth}×${info.defaultHeight}  ${bytes(folderSize(dir))}  ${dir}${from}${note}`;
  } catch (err) {
    return `${id}  ${dir}  — unreadable: ${(err as Error).message}`;
  }
}

export function listModels(o: { dir: string; modelsFile?: string }): string[] {
  const lines: string[] = [];
  if (o.modelsFile) {
    lines.push(`Models file ${resolve(o.modelsFile)}:`);
    const config = loadModelsFile(o.modelsFile);
    for (const m of config.models) lines.push(`  ${describeFolder(m.dir, m.id, `${m.id === config.defaultModel ? '  (default)' : ''}${m.load ? '' : '  (not loaded at start)'}`)}`);
  }
  const dir = resolve(o.dir);
  const folders = existsSync(dir) ? readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(dir, e.name)) : [];
  lines.push(`In ${dir}:`);
  if (folders.length === 0) lines.push('  (none — fetch one with `sdbot models pull OWNER/NAME`)');
  for (const f of folders) lines.push(`  ${describeFolder(f, basename(f))}`);
  lines.push('Bundled:', `  ${describeFolder(DEMO_MODEL, 'tiny-sd15', '  (smoke-test model: its pictures are noise)')}`);
  return lines;
}

export function registerModels(program: Command): void {
  const models = program.command('models').description('list, download (Hugging Face Hub) and verify model folders');
  const defaultDir = 'models';
  models
    .command('list')
    .description('model folders here and in the models file')
    .option('--dir <folder>', 'folder holding model folders', defaultDir)
    .option('--models-file <file>', 'JSON models file')
    .action((o: { dir: string; modelsFile?: string }) => {
      process.stdout.write(`${listModels(o).join('\n')}\n`);
    });
  models
    .command('pull <repo>')
    .description('download an ONNX export (diffusers layout) from the Hugging Face Hub; resumes, checks sizes and hashes')
    .option('--revision <rev>', 'branch, tag or commit', 'main')
    .option('--dir <folder>', 'where model folders go', defaultDir)
    .option('--name <name>', 'folder name (and model id); default: the repository name')
    .option('--all', 'download every file, not only what an ONNX pipeline needs')
    .option('--no-verify', 'skip loading the model afterwards')
    .option('--endpoint <url>', 'Hub address (default: HF_ENDPOINT or https://huggingface.co)', process.env.HF_ENDPOINT ?? DEFAULT_ENDPOINT)
    .action(async (repo: string, o: Omit<PullOptions, 'token'>) => {
      try {
        await pullModel(repo, { ...o, ...(process.env.HF_TOKEN ? { token: process.env.HF_TOKEN } : {}) });
      } catch (err) {
        process.stderr.write(`sdbot models pull: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    });
  models
    .command('verify <dir>')
    .description("open a model folder with the engine's loader and check every graph's inputs and outputs")
    .option('--providers <list>', 'ONNX execution providers, e.g. cuda,cpu', 'cpu')
    .action(async (dir: string, o: { providers: string }) => {
      try {
        await verifyModel(dir, o.providers.split(',').map((p) => p.trim()) as Provider[], (l) => process.stdout.write(`${l}\n`));
      } catch (err) {
        process.stderr.write(`sdbot models verify: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}
