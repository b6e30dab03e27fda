/**
 * A local stand-in for the Hugging Face Hub, enough for `sdbot models pull`: the revision API with `?blobs=true`
 * (sizes, LFS sha256, git blob ids), `resolve/{commit}/{path}` with LFS files redirected to a "CDN" path, Range
 * requests, and knobs for the failures a download must survive: a connection cut mid-file, corrupted bytes, a
 * token requirement.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HubRepoFile {
  path: string;
  bytes: Uint8Array;
  lfs: boolean;
}

export interface FakeHubOptions {
  repo: string;
  commit: string;
  files: HubRepoFile[];
  /** Send only this many bytes of a file on its next full (non-Range) download, then cut the connection. */
  cutAfter?: Map<string, number>;
  /** Serve these files with one byte changed. */
  corrupt?: Set<string>;
  /** Answer 401 unless this bearer token is sent. */
  token?: string;
}

export interface FakeHub {
  url: string;
  requests: { method: string; path: string; range?: string; auth?: string }[];
  options: FakeHubOptions;
  close(): Promise<void>;
}

function gitBlobSha1(bytes: Uint8Array): string {
  return createHash('sha1').update(`blob ${bytes.byteLength}\0`).update(bytes).digest('hex');
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export async function startFakeHub(options: FakeHubOptions): Promise<FakeHub> {
  const requests: FakeHub['requests'] = [];
  const byPath = () => new Map(options.files.map((f) => [f.path, f]));
  const authorized = (req: IncomingMessage) => !options.token || req.headers.authorization === `Bearer ${options.token}`;

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://hub');
    const path = decodeURIComponent(url.pathname);
    requests.push({ method: req.method ?? 'GET', path, ...(req.headers.range ? { range: req.headers.range } : {}), ...(req.headers.authorization ? { auth: req.headers.authorization } : {}) });
    const api = `/api/models/${options.repo}/revision/`;
    if (path.startsWith(api)) {
      if (!authorized(req)) return void res.writeHead(401).end('{"error":"gated"}');
      const rev = path.slice(api.length);
      if (rev !== 'main' && rev !== options.commit) return void res.writeHead(404).end('{"error":"Revision Not Found"}');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        id: options.repo, sha: options.commit,
        siblings: options.files.map((f) => ({
          rfilename: f.path, size: f.bytes.byteLength, blobId: gitBlobSha1(f.lfs ? new TextEncoder().encode(`lfs pointer ${f.path}`) : f.bytes),
          ...(f.lfs ? { lfs: { sha256: sha256(f.bytes), size: f.bytes.byteLength, pointerSize: 130 } } : {}),
        })),
      }));
      return;
    }
    if (path.startsWith('/api/')) return void res.writeHead(404).end('{"error":"Repository Not Found"}');
    const resolvePrefix = `/${options.repo}/resolve/${options.commit}/`;
    let file: HubRepoFile | undefined;
    if (path.startsWith(resolvePrefix)) {
      if (!authorized(req)) return void res.writeHead(401).end();
      file = byPath().get(path.slice(resolvePrefix.length));
      if (file?.lfs) {
        // LFS content lives on a CDN: the Hub answers with a redirect, as huggingface.co does.
        return void res.writeHead(302, { location: `/cdn/${sha256(file.bytes)}?name=${encodeURIComponent(file.path)}` }).end();
      }
    } else if (path.startsWith('/cdn/')) {
      file = byPath().get(url.searchParams.get('name') ?? '');
    }
    if (!file) return void res.writeHead(404).end('Entry not found');
    let bytes = file.bytes;
    if (options.corrupt?.has(file.path)) {
      bytes = new Uint8Array(bytes);
      bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0xff;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    if (start >= bytes.byteLength && range) return void res.writeHead(416, { 'content-range': `bytes */${bytes.byteLength}` }).end();
    const body = bytes.subarray(start);
    res.writeHead(range ? 206 : 200, {
      'content-length': String(body.byteLength), 'accept-ranges': 'bytes', 'x-repo-commit': options.commit,
      ...(range ? { 'content-range': `bytes ${start}-${bytes.byteLength - 1}/${bytes.byteLength}` } : {}),
    });
    const cut = range ? undefined : options.cutAfter?.get(file.path);
    if (cut !== undefined) {
      options.cutAfter?.delete(file.path);
      // Close the connection (FIN) mid-body: the client sees a premature end. fetch's body stream drops what it had
      // queued but not yet handed out, so the client keeps at most `cut` bytes.
      res.write(body.subarray(0, cut), () => res.socket?.end());
      return;
    }
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    options,
    close: () => new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}
