/**
 * `sdbot models pull | verify | list` against a local fake Hub serving the tiny SD 1.5 fixture as a repository:
 * only the ONNX pipeline's files come down, a cut download resumes with a Range request, corrupted bytes are
 * caught by the hash, gated repositories need HF_TOKEN, and the engine's loader accepts the result.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isOnnxExportFile, resolveSnapshot } from '../../src/cli/hub.js';
import { listModels, MANIFEST, pullModel, verifyModel, type PullOptions } from '../../src/cli/models.js';
import { startFakeHub, type FakeHub, type HubRepoFile } from '../fakes/hub/server.js';
import { ROOT } from '../helpers/engine-procs.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'models', 'tiny-sd15');
const REPO = 'someone/tiny-sd15-onnx';
const COMMIT = 'a'.repeat(40);

function filesOf(dir: string, base = dir): HubRepoFile[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return filesOf(p, base);
    return [{ path: relative(base, p).split('\\').join('/'), bytes: new Uint8Array(readFileSync(p)), lfs: e.name.endsWith('.onnx') }];
  });
}

describe('sdbot models', () => {
  let hub: FakeHub;
  let work: string;
  const lines: string[] = [];
  const opts = (extra: Partial<PullOptions> = {}): PullOptions => ({ revision: 'main', dir: join(work, 'models'), verify: false, endpoint: hub.url, log: (l) => lines.push(l), ...extra });

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'sdbot-models-'));
    const files = [
      ...filesOf(FIXTURE),
      { path: 'unet/diffusion_pytorch_model.safetensors', bytes: new Uint8Array(5000), lfs: true },
      { path: '.gitattributes', bytes: new TextEncoder().encode('*.onnx filter=lfs\n'), lfs: false },
      { path: 'README.md', bytes: new TextEncoder().encode('# tiny\n'), lfs: false },
    ];
    hub = await startFakeHub({ repo: REPO, commit: COMMIT, files });
  });
  afterAll(async () => {
    await hub?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('picks the files an ONNX pipeline needs', () => {
    expect(['model_index.json', 'unet/model.onnx', 'unet/model.onnx_data', 'tokenizer/merges.txt', 'text_encoder_3/spiece.model', 'scheduler/scheduler_config.json', 'image_normalizer/mean_std.json', 'image_normalizer/diffusion_pytorch_model.safetensors'].every(isOnnxExportFile)).toBe(true);
    expect(['unet/diffusion_pytorch_model.safetensors', '.gitattributes', 'README.md', 'sample.png', 'vae/diffusion_pytorch_model.bin'].some(isOnnxExportFile)).toBe(false);
  });

  it('pulls the export by commit, checks it with the engine loader, and skips everything on a second pull', async () => {
    const first = await pullModel(REPO, opts({ verify: true }));
    expect(first.dir).toBe(join(work, 'models', 'tiny-sd15-onnx'));
    for (const f of filesOf(FIXTURE)) expect(readFileSync(join(first.dir, f.path)).equals(Buffer.from(f.bytes)), f.path).toBe(true);
    expect(existsSync(join(first.dir, 'unet', 'diffusion_pytorch_model.safetensors'))).toBe(false);
    expect(existsSync(join(first.dir, 'README.md'))).toBe(false);
    expect(hub.requests.filter((r) => r.path.includes('/resolve/')).every((r) => r.path.includes(`/resolve/${COMMIT}/`))).toBe(true);
    expect(hub.requests.some((r) => r.path.startsWith('/cdn/'))).toBe(true);
    expect(lines.join('\n')).toMatch(/OK — StableDiffusion\w* \(sd\)/);
    expect(JSON.parse(readFileSync(join(first.dir, MANIFEST), 'utf8'))).toMatchObject({ repo: REPO, commit: COMMIT });

    const before = hub.requests.length;
    const second = await pullModel(REPO, opts());
    expect(second).toMatchObject({ downloaded: 0, skipped: filesOf(FIXTURE).length });
    expect(hub.requests.slice(before).filter((r) => !r.path.startsWith('/api/'))).toEqual([]);
    expect(listModels({ dir: join(work, 'models') }).join('\n')).toContain(`tiny-sd15-onnx  sd  64×64`);
    expect(listModels({ dir: join(work, 'models') }).join('\n')).toContain(`from ${REPO}@${COMMIT.slice(0, 12)}`);
  }, 60_000);

  it('resumes a cut download with a Range request', async () => {
    const unet = filesOf(FIXTURE).find((f) => f.path === 'unet/model.onnx')!;
    const half = unet.bytes.byteLength >> 1;
    hub.options.cutAfter = new Map([['unet/model.onnx', half]]);
    await expect(pullModel(REPO, opts({ name: 'resumed' }))).rejects.toThrow();
    const dest = join(work, 'models', 'resumed', 'unet', 'model.onnx');
    expect(existsSync(dest)).toBe(false);
    const partial = statSync(`${dest}.part`).size;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThanOrEqual(half);
    const result = await pullModel(REPO, opts({ name: 'resumed' }));
    expect(result.resumed).toBe(1);
    expect(hub.requests.some((r) => r.path.startsWith('/cdn/') && r.range === `bytes=${partial}-`)).toBe(true);
    expect(readFileSync(dest).equals(Buffer.from(unet.bytes))).toBe(true);
    expect(existsSync(`${dest}.part`)).toBe(false);
  }, 60_000);

  it('refuses corrupted bytes: hash mismatch named, nothing kept', async () => {
    hub.options.corrupt = new Set(['vae_decoder/model.onnx', 'unet/config.json']);
    try {
      await expect(pullModel(REPO, opts({ name: 'corrupt' }))).rejects.toThrow(/(unet\/config\.json: git sha1|vae_decoder\/model\.onnx: sha256) mismatch/);
      const dir = join(work, 'models', 'corrupt');
      expect(existsSync(join(dir, 'unet', 'config.json'))).toBe(false);
      expect(existsSync(join(dir, 'unet', 'config.json.part'))).toBe(false);
    } finally {
      hub.options.corrupt = undefined;
    }
  }, 60_000);

  it('explains a missing repository, a missing revision and a gated one', async () => {
    await expect(resolveSnapshot('someone/nothing', 'main', { endpoint: hub.url })).rejects.toThrow(/not found.*repository id/);
    await expect(resolveSnapshot(REPO, 'v9', { endpoint: hub.url })).rejects.toThrow(/@v9: not found/);
    await expect(resolveSnapshot('not a repo', 'main', { endpoint: hub.url })).rejects.toThrow(/not a Hub repository id/);
    hub.options.token = 'hf_secret';
    try {
      await expect(resolveSnapshot(REPO, 'main', { endpoint: hub.url })).rejects.toThrow(/HF_TOKEN/);
      expect((await resolveSnapshot(REPO, 'main', { endpoint: hub.url, token: 'hf_secret' })).commit).toBe(COMMIT);
    } finally {
      hub.options.token = undefined;
    }
  });

  it('verify names the file at fault in a broken folder', async () => {
    const broken = join(work, 'broken');
    cpSync(FIXTURE, broken, { recursive: true });
    const cfgPath = join(broken, 'unet', 'config.json');
    writeFileSync(cfgPath, JSON.stringify({ ...JSON.parse(readFileSync(cfgPath, 'utf8')), in_channels: 9 }));
    await expect(verifyModel(broken, ['cpu'], () => undefined)).rejects.toThrow(/channels/);
  });

  it('is wired into the CLI', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'models', 'verify', FIXTURE], { cwd: ROOT, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('OK');
    expect(r.status).toBe(0);
  }, 30_000);
});
