/**
 * The message model every adapter renders in its own platform's terms: a headline, plain lines (backticks mark
 * code), images and rows of buttons. The core decides what to say; adapters decide how it looks.
 */
import { requestControls, type GenerationRequest } from '../../queue/job.js';
import type { EncodedUpload } from '../../engine/image/index.js';

export type ButtonStyle = 'primary' | 'secondary' | 'success' | 'danger';

export interface MessageButton {
  /** Stateless action id (see actions.ts): the platform hands it back on click. */
  id: string;
  label: string;
  style: ButtonStyle;
  emoji?: string;
}

export interface MessageImage {
  name: string;
  data: Uint8Array;
  mime: string;
}

export interface BotMessage {
  kind: 'queued' | 'progress' | 'result' | 'error' | 'info';
  /** Headline, usually the prompt; adapters escape it and show it bold. */
  title?: string;
  lines: string[];
  images: MessageImage[];
  buttons: MessageButton[][];
  /** User id to mention (the person who asked), rendered in the platform's mention syntax. */
  mention?: string;
  /** No edit follows this one. */
  final: boolean;
}

const TITLE_MAX = 300;

/**
 * The picture a progress message shows (its one image), undefined for results and messages without one. Progress
 * messages carry the latest preview until a newer one arrives, so the same bytes come again: adapters compare this
 * to what they last showed and keep the uploaded file instead of sending it again.
 */
export function previewOf(m: BotMessage): Uint8Array | undefined {
  return !m.final && m.kind !== 'result' && m.images.length === 1 ? m.images[0]!.data : undefined;
}

export function titleFor(request: GenerationRequest): string {
  const p = request.prompt.trim() || `(${request.kind}, no prompt)`;
  return p.length > TITLE_MAX ? `${p.slice(0, TITLE_MAX - 1)}…` : p;
}

export function queuedMessage(request: GenerationRequest, position: number, etaMs: number | null): BotMessage {
  const eta = etaMs !== null && etaMs > 0 ? ` (about ${formatSeconds(etaMs)})` : '';
  const where = position <= 1 ? 'Next in line' : `Queued: #${position} in line`;
  return { kind: 'queued', title: titleFor(request), lines: [`${where}${eta}…`], images: [], buttons: [], mention: request.origin.userId, final: false };
}

export function startedMessage(request: GenerationRequest): BotMessage {
  return { kind: 'progress', title: titleFor(request), lines: ['Starting…'], images: [], buttons: [], mention: request.origin.userId, final: false };
}

export function progressMessage(request: GenerationRequest, step: number, total: number, preview?: Uint8Array): BotMessage {
  const width = 12;
  const filled = total > 0 ? Math.round((step / total) * width) : 0;
  const bar = '▰'.repeat(filled) + '▱'.repeat(width - filled);
  return {
    kind: 'progress',
    title: titleFor(request),
    lines: [`${bar} step ${step}/${total}`],
    images: preview ? [{ name: 'preview.png', data: preview, mime: 'image/png' }] : [],
    buttons: [],
    mention: request.origin.userId,
    final: false,
  };
}

/** One line of facts under a result: what someone needs to reproduce it. */
export function captionLine(request: GenerationRequest, size: { width: number; height: number } | null, elapsedMs: number): string {
  const facts = [
    `seed \`${request.seed}\``,
    `\`${request.model}\``,
    request.sampler ?? 'default sampler',
    request.schedule !== 'default' ? request.schedule : '',
    request.steps !== null ? `${request.steps} steps` : '',
    request.guidance !== null ? `cfg ${request.guidance}` : '',
    size ? `${size.width}×${size.height}` : '',
    request.kind !== 'txt2img' ? request.kind : '',
    // img2img / inpaint steered by a control image say so (a "controlnet" job already does).
    request.kind !== 'controlnet' && requestControls(request).length > 0 ? `ControlNet${request.controlGuessMode ? ' (guess mode)' : ''}` : '',
    request.kind === 'controlnet' && request.controlGuessMode ? 'guess mode' : '',
    formatSeconds(elapsedMs),
  ];
  return facts.filter(Boolean).join(' · ');
}

export function resultMessage(
  request: GenerationRequest,
  files: readonly EncodedUpload[],
  buttons: MessageButton[][],
  lines: string[],
): BotMessage {
  const images = files.map((f, i) => ({ name: files.length === 1 ? `sdbot-${request.seed}.${f.ext}` : `sdbot-${request.seed}-${i + 1}.${f.ext}`, data: f.bytes, mime: f.mime }));
  return { kind: 'result', title: titleFor(request), lines, images, buttons, mention: request.origin.userId, final: true };
}

export function errorMessage(text: string, title?: string): BotMessage {
  return { kind: 'error', ...(title ? { title } : {}), lines: [`⚠️ ${text}`], images: [], buttons: [], final: true };
}

export function infoMessage(lines: string[], title?: string): BotMessage {
  return { kind: 'info', ...(title ? { title } : {}), lines, images: [], buttons: [], final: true };
}

export function formatSeconds(ms: number): string {
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}
