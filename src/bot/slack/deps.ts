/** What every Slack handler needs, and the small helpers they share for errors and origins. */
import type { BotCore } from '../core/bot-core.js';
import { userMessageFor } from '../core/errors.js';
import type { FetchPolicy } from '../core/fetch-image.js';
import type { AckFirstGate } from './ack-first.js';

export interface SlackDeps {
  core: BotCore;
  adminUserIds: ReadonlySet<string>;
  /** For users' pictures: Slack's file host (and the configured API host), with the bot token. */
  fetchPolicy: Omit<FetchPolicy, 'maxBytes' | 'maxPixels'>;
  /** Handlers await a turn after their ack, so other requests' acks go first. */
  afterAck: AckFirstGate;
}

/** Slack API error codes a person can act on. */
const SLACK_ERRORS: Record<string, string> = {
  not_in_channel: 'I am not in this channel: invite me first (`/invite @sdbot`), then try again.',
  channel_not_found: "I can't post here: invite me to this channel first (`/invite @sdbot`).",
  is_archived: 'This channel is archived.',
};

/** The text for an error shown to the user; UserErrors and Slack's actionable API errors verbatim, others generic. */
export function slackUserMessage(err: unknown): string {
  const code = (err as { data?: { error?: string } } | null)?.data?.error;
  if (code && SLACK_ERRORS[code]) return `⚠️ ${SLACK_ERRORS[code]}`;
  return `⚠️ ${userMessageFor(err)}`;
}

/** Errors users cause are not the bot's failures; everything else is logged with its stack. */
export function logIfUnexpected(deps: SlackDeps, err: unknown, context: Record<string, unknown>, msg: string): void {
  if (err instanceof Error && (err.name === 'UserError' || err.name === 'BadRequestError')) return;
  deps.core.options.logger.error({ ...context, err: err instanceof Error ? err.stack : String(err) }, msg);
}
