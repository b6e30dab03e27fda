/**
 * Discord attachments as the core's remote images, and the fetch policy for them: files come only from
 * Discord's CDN hosts (plus the configured API host, for REST proxies and the tests' fake Discord).
 */
import type { APIAttachment, Attachment, Collection } from 'discord.js';
import type { FetchPolicy } from '../core/fetch-image.js';
import type { RemoteImage } from '../core/validate.js';

export const DISCORD_CDN_HOSTS = ['cdn.discordapp.com', 'media.discordapp.net'] as const;

export function fetchPolicyFor(apiUrl: string | undefined): Omit<FetchPolicy, 'maxBytes' | 'maxPixels'> {
  const hosts: string[] = [...DISCORD_CDN_HOSTS];
  let allowHttp = false;
  if (apiUrl) {
    const api = new URL(apiUrl);
    if (!/(^|\.)discord\.com$/.test(api.hostname)) {
      hosts.push(api.host);
      allowHttp = api.protocol === 'http:';
    }
  }
  return { allowedHosts: hosts, allowHttp };
}

export function remoteFromAttachment(a: Attachment): RemoteImage {
  return { url: a.url, filename: a.name, size: a.size, contentType: a.contentType, width: a.width, height: a.height };
}

export function remoteFromApi(a: APIAttachment): RemoteImage {
  return { url: a.url, filename: a.filename, size: a.size, contentType: a.content_type ?? null, width: a.width ?? null, height: a.height ?? null };
}

/**
 * Attachments that claim to be pictures (the claim is checked after download). Files without a content type
 * count when their name looks like a picture, so the user gets a precise error rather than silence.
 */
export function looksLikeImage(r: RemoteImage): boolean {
  return r.contentType ? r.contentType.startsWith('image/') : /\.(png|jpe?g|webp|gif|avif)$/i.test(r.filename ?? '');
}

export function imagesOf(attachments: Collection<string, Attachment>): RemoteImage[] {
  return [...attachments.values()].map(remoteFromAttachment).filter(looksLikeImage);
}
