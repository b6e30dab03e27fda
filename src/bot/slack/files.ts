/**
 * Files on Slack: uploading the bot's pictures (files.uploadV2's three calls: files.getUploadURLExternal, the
 * upload, files.completeUploadExternal), and reading users' pictures from their private URLs, which need the bot
 * token, with the core's checks (allowed hosts, byte size, sniffed type, pixel count).
 * https://docs.slack.dev/messaging/working-with-files
 */
import type { webApi } from '@slack/bolt';
import type { FetchPolicy } from '../core/fetch-image.js';
import { fetchCheckedImage } from '../core/fetch-image.js';
import type { MessageImage } from '../core/messages.js';
import type { RemoteImage } from '../core/validate.js';

type WebClient = webApi.WebClient;

export const SLACK_FILE_HOSTS = ['files.slack.com'] as const;
/**
 * Slack takes files up to 1 GB; a 4-image grid PNG is far below this, so results always go up as PNG (image
 * blocks show PNG, JPEG and GIF only, not the WebP fallback used under tighter limits).
 */
export const SLACK_UPLOAD_LIMIT = 100 * 1024 * 1024;

/** The subset of Slack's file object the bot reads (https://docs.slack.dev/reference/objects/file-object). */
export interface SlackFile {
  id: string;
  name?: string;
  mimetype?: string;
  size?: number;
  url_private?: string;
  url_private_download?: string;
  original_w?: number;
  original_h?: number;
}

/** Where pictures may come from: Slack's file host, plus the configured API host (proxies, the tests' fake Slack). */
export function slackFetchPolicy(token: string, apiUrl: string | undefined): Omit<FetchPolicy, 'maxBytes' | 'maxPixels'> {
  const hosts: string[] = [...SLACK_FILE_HOSTS];
  let allowHttp = false;
  if (apiUrl) {
    const api = new URL(apiUrl);
    if (!/(^|\.)slack\.com$/.test(api.hostname)) {
      hosts.push(api.host);
      allowHttp = api.protocol === 'http:';
    }
  }
  return { allowedHosts: hosts, allowHttp, headers: { Authorization: `Bearer ${token}` } };
}

export function remoteFromSlackFile(f: SlackFile): RemoteImage | null {
  const url = f.url_private_download ?? f.url_private;
  if (!url) return null;
  return { url, ...(f.name ? { filename: f.name } : {}), ...(f.size !== undefined ? { size: f.size } : {}), contentType: f.mimetype ?? null, width: f.original_w ?? null, height: f.original_h ?? null };
}

/** Files that claim to be pictures (the claim is checked after download). */
export function imageFiles(files: readonly SlackFile[] | undefined): RemoteImage[] {
  return (files ?? [])
    .filter((f) => (f.mimetype ? f.mimetype.startsWith('image/') : /\.(png|jpe?g|webp|gif|avif)$/i.test(f.name ?? '')))
    .map(remoteFromSlackFile)
    .filter((r): r is RemoteImage => r !== null);
}

/**
 * Uploads pictures without sharing them in a channel: messages show them through image blocks (`slack_file`), so
 * one message carries the picture, the caption and the buttons and can be edited as the job progresses.
 */
export async function uploadImages(client: WebClient, images: readonly MessageImage[]): Promise<string[]> {
  if (images.length === 0) return [];
  const res = await client.files.uploadV2({
    file_uploads: images.map((img) => ({ file: Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), filename: img.name, title: img.name })),
  });
  // One completion per destination (here the single "nowhere"), each listing its files in upload order.
  const completions = (res as unknown as { files?: { files?: { id?: string }[] }[] }).files ?? [];
  const ids = completions.flatMap((c) => c.files ?? []).map((f) => f.id).filter((id): id is string => Boolean(id));
  if (ids.length !== images.length) throw new Error(`files.uploadV2 returned ${ids.length} file ids for ${images.length} images`);
  return ids;
}

/** The pictures behind file ids (a result's image blocks), downloaded with the same checks as users' uploads. */
export async function downloadFiles(
  client: WebClient, fileIds: readonly string[], policy: FetchPolicy,
): Promise<Uint8Array[]> {
  return Promise.all(fileIds.map(async (file) => {
    const info = await client.files.info({ file });
    const remote = info.file ? remoteFromSlackFile(info.file as SlackFile) : null;
    if (!remote) throw new Error(`files.info gave no URL for ${file}`);
    return fetchCheckedImage(remote, policy, 'The picture');
  }));
}
