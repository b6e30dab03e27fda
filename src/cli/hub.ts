/**
 * Downloading an ONNX export from the Hugging Face Hub, the way huggingface_hub does it, without Python:
 *
 *   GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true   → the commit and every file with its size and
 *        hash (LFS files: sha256 of the content; others: the git blob id, sha1 of "blob {size}\0" + content)
 *   GET {endpoint}/{repo}/resolve/{commit}/{path}                     → the bytes (LFS files redirect to a CDN)
 *
 * Files are fetched by commit, not branch, so a push during a pull cannot mix two versions. Each file goes to
 * `path.part` first; a rerun resumes it with a Range request; only a file whose size and hash match is renamed into
 * place. HF_TOKEN is sent for gated and private repositories.
 * https://huggingface.co/docs/hub/api · https://huggingface.co/docs/huggingface_hub/guides/download
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, normalize, sep } from 'node:path';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubFile {
  path: string;
  size: number;
  /** LFS files: sha256 of the content. */
  sha256?: string;
  /** Other files: the git blob id. */
  gitSha1?: string;
}

export interface HubSnapshot {
  repo: string;
  revision: string;
  commit: string;
  files: HubFile[];
}

export interface HubOptions {
  endpoint?: string;
  token?: string;
}

export class HubError extends Error {
  override readonly name = 'HubError';
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

function headers(o: HubOptions, extra: Record<string, string> = {}): Record<string, string> {
  return { 'user-agent': 'sdbot', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}), ...extra };
}

function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

export function resolveUrl(endpoint: string, repo: string, commit: string, path: string): string {
  return `${endpoint.replace(/\/+$/, '')}/${repo}/resolve/${commit}/${encodePath(path)}`;
}

function httpProblem(status: number, what: string, o: HubOptions): HubError {
  if (status === 401 || status === 403) {
    return new HubError(`${what}: access denied (HTTP ${status}). ${o.token ? 'Your HF_TOKEN may lack access: accept the model\'s license on its page.' : 'Gated or private repositories need HF_TOKEN (https://huggingface.co/settings/tokens).'}`);
  }
  if (status === 404) return new HubError(`${what}: not found (HTTP 404). Check the repository id and --revision.`);
  return new HubError(`${what}: HTTP ${status}`);
}

interface Sibling {
  rfilename?: string;
  size?: number;
  blobId?: string;
  lfs?: { sha256?: string; size?: number };
}

export async function resolveSnapshot(repo: string, revision: string, o: HubOptions = {}): Promise<HubSnapshot> {
  if (!REPO_ID.test(repo)) throw new HubError(`"${repo}" is not a Hub repository id (owner/name).`);
  const endpoint = (o.endpoint ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
  const url = `${endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
  let res: Response;
  try {
    res = await fetch(url, { headers: headers(o) });
  } catch (err) {
    throw new HubError(`cannot reach ${endpoint}: ${(err as Error).message}`);
  }
  if (!res.ok) throw httpProblem(res.status, `${repo}@${revision}`, o);
  const body = (await res.json()) as { sha?: string; siblings?: Sibling[] };
  if (!body.sha || !Array.isArray(body.siblings)) throw new HubError(`${url}: unexpected answer (no sha / siblings)`);
  const files = body.siblings.flatMap((s): HubFile[] => {
    const path = s.rfilename;
    if (!path || !safeRelative(path)) return [];
    const size = s.lfs?.size ?? s.size;
    if (size === undefined) return [];
    return [{ path, size, ...(s.lfs?.sha256 ? { sha256: s.lfs.sha256 } : s.blobId ? { gitSha1: s.blobId } : {}) }];
  });
  return { repo, revision, commit: body.sha, files };
}

/** A repository path that stays inside the destination folder. */
function safeRelative(path: string): boolean {
  const n = normalize(path);
  return !n.startsWith('..') && !n.startsWith(sep) && !n.split(sep).includes('..');
}

/** What an ONNX pipeline folder needs: the graphs (and external weight files), configs, tokenizer files. */
export function isOnnxExportFile(path: string): boolean {
  if (path.startsWith('.') || path.includes('/.')) return false;
  if (/\.(onnx|onnx_data|onnx\.data|pb)$/i.test(path)) return true;
  if (/(^|\/)(model_index|config|scheduler_config|preprocessor_config|tokenizer_config|tokenizer|special_tokens_map|vocab|added_tokens)\.json$/.test(path)) return true;
  // Stable unCLIP's normalizer is two small vectors, stored as JSON or as diffusers saved them.
  if (/(^|\/)image_normalizer\/(mean_std\.json|diffusion_pytorch_model\.safetensors)$/.test(path)) return true;
  return /(^|\/)(merges\.txt|spiece\.model|vocab\.txt)$/.test(path);
}

/** Hash of what is expected: sha256 for LFS files, the git blob sha1 otherwise (or none when the Hub gave none). */
function expectedHash(file: HubFile): { hash: Hash; want: string; kind: string } | null {
  if (file.sha256) return { hash: createHash('sha256'), want: file.sha256, kind: 'sha256' };
  if (file.gitSha1) {
    const hash = createHash('sha1');
    hash.update(`blob ${file.size}\0`);
    return { hash, want: file.gitSha1, kind: 'git sha1' };
  }
  return null;
}

async function hashInto(hash: Hash, path: string): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

/** True when `path` has the expected size and hash. */
export async function fileMatches(path: string, file: HubFile): Promise<boolean> {
  if (!existsSync(path) || statSync(path).size !== file.size) return false;
  const check = expectedHash(file);
  if (!check) return true;
  await hashInto(check.hash, path);
  return check.hash.digest('hex') === check.want;
}

export interface DownloadOptions extends HubOptions {
  /** Bytes received (for progress), resumed bytes included once at the start. */
  onBytes?(n: number): void;
  signal?: AbortSignal;
}

export type DownloadOutcome = 'downloaded' | 'resumed';

/** Downloads one file to `dest` through `dest.part`, resuming a partial one; checks size and hash before renaming. */
export async function downloadFile(url: string, dest: string, file: HubFile, o: DownloadOptions = {}): Promise<DownloadOutcome> {
  mkdirSync(dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  let have = existsSync(part) ? statSync(part).size : 0;
  if (have > file.size) {
    rmSync(part);
    have = 0;
  }
  const res = await fetch(url, { headers: headers(o, have > 0 ? { range: `bytes=${have}-` } : {}), ...(o.signal ? { signal: o.signal } : {}) });
  let outcome: DownloadOutcome = 'downloaded';
  if (res.status === 416 && have === file.size) {
    await res.body?.cancel();
  } else {
    if (!res.ok || !res.body) throw httpProblem(res.status, file.path, o);
    const resumed = res.status === 206 && have > 0;
    if (!resumed) have = 0;
    else outcome = 'resumed';
    o.onBytes?.(have);
    const out = createWriteStream(part, { flags: resumed ? 'a' : 'w' });
    const closed = new Promise<void>((resolve, reject) => out.once('close', resolve).once('error', reject));
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        have += chunk.byteLength;
        if (have > file.size) throw new HubError(`${file.path}: the server sent more than the ${file.size} bytes the Hub lists`);
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
        o.onBytes?.(chunk.byteLength);
      }
    } finally {
      out.end();
      await closed;
    }
  }
  const size = statSync(part).size;
  if (size !== file.size) throw new HubError(`${file.path}: got ${size} of ${file.size} bytes; run the pull again to resume`);
  const check = expectedHash(file);
  if (check) {
    await hashInto(check.hash, part);
    const got = check.hash.digest('hex');
    if (got !== check.want) {
      rmSync(part);
      throw new HubError(`${file.path}: ${check.kind} mismatch (expected ${check.want}, got ${got}); the partial file was removed, run the pull again`);
    }
  }
  renameSync(part, dest);
  return outcome;
}

export function destPath(folder: string, file: HubFile): string {
  return join(folder, ...file.path.split('/'));
}
