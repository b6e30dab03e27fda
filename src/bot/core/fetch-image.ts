/**
 * Downloads a user's image from a platform's file host with every check done before the job is queued: only
 * allowed hosts (redirects included), the declared and the actual byte size (the download stops at the limit),
 * then the engine's decoder: real type sniffed from the bytes, dimensions and pixel count from the header.
 */
import { decodeImage, DEFAULT_LIMITS as ENGINE_LIMITS } from '../../engine/image/index.js';
import { UserError } from './errors.js';
import type { RemoteImage } from './validate.js';

export interface FetchPolicy {
  /** Host names (or host:port) images may come from. */
  allowedHosts: readonly string[];
  /** Plain http is refused unless allowed (local fakes in tests). */
  allowHttp?: boolean;
  /** Sent with the request (Slack files need the bot token). */
  headers?: Record<string, string>;
  maxBytes: number;
  maxPixels: number;
  timeoutMs?: number;
}

export const DEFAULT_LIMITS = { maxBytes: ENGINE_LIMITS.maxBytes, maxPixels: ENGINE_LIMITS.maxPixels };
const MAX_REDIRECTS = 3;

export async function fetchCheckedImage(image: RemoteImage, policy: FetchPolicy, what = 'The image'): Promise<Uint8Array> {
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  if (image.size !== undefined && image.size > policy.maxBytes) {
    throw new UserError(`${what} is ${mib(image.size)}; the limit is ${mib(policy.maxBytes)}.`);
  }
  if (image.width && image.height && image.width * image.height > policy.maxPixels) {
    throw new UserError(`${what} is ${image.width}×${image.height} pixels; the limit is ${policy.maxPixels.toLocaleString('en')} pixels.`);
  }
  const bytes = await download(image.url, policy, what);
  // The engine's decoder checks type (sniffed), header dimensions and pixel count before decoding any pixel.
  try {
    await decodeImage(bytes, { maxBytes: policy.maxBytes, maxPixels: policy.maxPixels });
  } catch (err) {
    if (err instanceof Error && err.name === 'BadRequestError') throw new UserError(`${what}: ${err.message}.`);
    throw err;
  }
  return bytes;
}

function checkUrl(raw: string, policy: FetchPolicy, what: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UserError(`${what} has an address I can't read.`);
  }
  const protocolOk = url.protocol === 'https:' || (policy.allowHttp === true && url.protocol === 'http:');
  if (!protocolOk || !(policy.allowedHosts.includes(url.host) || policy.allowedHosts.includes(url.hostname))) {
    throw new UserError(`${what} must be uploaded to the chat itself; I don't fetch pictures from ${url.hostname}.`);
  }
  return url;
}

async function download(raw: string, policy: FetchPolicy, what: string): Promise<Uint8Array> {
  let url = checkUrl(raw, policy, what);
  const signal = AbortSignal.timeout(policy.timeoutMs ?? 20_000);
  for (let hop = 0; ; hop++) {
    let res: Response;
    try {
      res = await fetch(url, { redirect: 'manual', signal, ...(policy.headers ? { headers: policy.headers } : {}) });
    } catch {
      throw new UserError(`I couldn't download ${what.toLowerCase()}: the file host didn't answer.`);
    }
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel();
      if (hop >= MAX_REDIRECTS) throw new UserError(`I couldn't download ${what.toLowerCase()}: too many redirects.`);
      url = checkUrl(new URL(location, url).toString(), policy, what);
      continue;
    }
    if (!res.ok || !res.body) throw new UserError(`I couldn't download ${what.toLowerCase()} (HTTP ${res.status}). Try uploading it again.`);
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > policy.maxBytes) {
      await res.body.cancel();
      throw new UserError(`${what} is too large; the limit is ${(policy.maxBytes / 1024 / 1024).toFixed(1)} MiB.`);
    }
    return readCapped(res.body, policy.maxBytes, what);
  }
}

async function readCapped(body: ReadableStream<Uint8Array>, maxBytes: number, what: string): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw new UserError(`${what} is too large; the limit is ${(maxBytes / 1024 / 1024).toFixed(1)} MiB.`);
    }
    chunks.push(value);
  }
  return new Uint8Array(Buffer.concat(chunks));
}
