/**
 * Clicks on the buttons under results. The button's value is the core's stateless action id (action, image,
 * job id); the picture comes from the clicked message's image blocks. ack() first, then as on Discord: delete for
 * the owner or an admin, else a follow-up job posted as a new message next to the result.
 */
import type { App, BlockAction, ButtonAction, RespondFn } from '@slack/bolt';
import type { Origin } from '../../queue/job.js';
import { isSlackAdmin } from './admin-command.js';
import { logIfUnexpected, slackUserMessage, type SlackDeps } from './deps.js';
import { downloadFiles, SLACK_UPLOAD_LIMIT } from './files.js';
import { slackSink } from './message-sink.js';
import { fileIdsOf, toMrkdwn } from './render.js';

/** Our action ids start with the core's prefix; other apps' buttons are not ours. */
export const ACTION_PATTERN = /^sd1:/;

interface ClickedMessage {
  ts: string;
  thread_ts?: string;
  blocks?: unknown;
}

export function registerButtons(app: App, deps: SlackDeps): void {
  app.action<BlockAction<ButtonAction>>(ACTION_PATTERN, async ({ ack, body, action, client, respond }) => {
    await ack();
    await deps.afterAck.turn();
    try {
      await click(body, action, client, deps);
    } catch (err) {
      logIfUnexpected(deps, err, { user: body.user.id, action: action.value }, 'button failed');
      await tell(respond, slackUserMessage(err));
    }
  });
}

function tell(respond: RespondFn, text: string): Promise<unknown> {
  return respond({ response_type: 'ephemeral', replace_original: false, text: toMrkdwn(text) }).catch(() => undefined);
}

type Client = Parameters<typeof isSlackAdmin>[0];

async function click(body: BlockAction<ButtonAction>, action: ButtonAction, client: Client, deps: SlackDeps): Promise<void> {
  const decoded = deps.core.decodeAction(action.value ?? action.action_id);
  const channel = body.channel?.id ?? body.container.channel_id;
  const message = body.message as ClickedMessage | undefined;
  if (!decoded || !channel || !message) return;
  const log = deps.core.options.logger;
  const fileIds = fileIdsOf(message.blocks);
  if (decoded.action === 'delete') {
    const isAdmin = await isSlackAdmin(client, body.user.id, deps.adminUserIds);
    if (!(await deps.core.mayDelete(decoded.jobId, body.user.id, isAdmin))) {
      await client.chat.postEphemeral({ channel, user: body.user.id, text: 'Only the person who asked for this picture, or an admin, can delete it.', ...(message.thread_ts ? { thread_ts: message.thread_ts } : {}) });
      return;
    }
    await client.chat.delete({ channel, ts: message.ts });
    await Promise.all(fileIds.map((file) => client.files.delete({ file }).catch(() => undefined)));
    log.info({ user: body.user.id, jobId: decoded.jobId, admin: isAdmin }, 'result deleted');
    return;
  }
  const origin: Origin = {
    platform: 'slack', userId: body.user.id, ...(body.user.name ? { userName: body.user.name } : {}),
    ...(body.team?.id ? { guildId: body.team.id } : {}), channelId: channel, ...(message.thread_ts ? { replyTo: message.thread_ts } : {}),
  };
  const startedAt = Date.now();
  const policy = { ...deps.core.imageLimits, ...deps.fetchPolicy };
  const request = await deps.core.followUp(decoded, origin, () => downloadFiles(client, fileIds, policy));
  const out = slackSink(client, { channel, ...(message.thread_ts ? { threadTs: message.thread_ts } : {}) }, log);
  await deps.core.run(request, out.sink, { maxUploadBytes: SLACK_UPLOAD_LIMIT, startedAt });
}
