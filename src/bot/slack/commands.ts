/**
 * `/imagine` and `/sd-admin`. Slack drops a command not acknowledged within 3 s
 * (https://docs.slack.dev/interactivity/implementing-slash-commands#responding_to_commands), so ack() comes before
 * any other I/O: with the help text or the core's synchronous rejection as an ephemeral answer, else empty; the
 * progress message, queue calls and users.info come after. Later errors go back ephemerally through respond().
 */
import type { AckFn, App, RespondArguments, RespondFn, SlashCommand } from '@slack/bolt';
import type { Origin } from '../../queue/job.js';
import { helpText, isHelpRequest } from '../core/help.js';
import type { Draft } from '../core/validate.js';
import { ADMIN_USAGE, isSlackAdmin, parseAdminText } from './admin-command.js';
import { logIfUnexpected, slackUserMessage, type SlackDeps } from './deps.js';
import { SLACK_UPLOAD_LIMIT } from './files.js';
import { slackSink } from './message-sink.js';
import { toMrkdwn, unescapeSlack } from './render.js';

export const IMAGINE = '/imagine';
export const ADMIN = '/sd-admin';

function ephemeral(text: string): RespondArguments {
  return { response_type: 'ephemeral', text, replace_original: false };
}

export function commandOrigin(c: SlashCommand): Origin {
  return { platform: 'slack', userId: c.user_id, userName: c.user_name, guildId: c.team_id, channelId: c.channel_id };
}

export function registerCommands(app: App, deps: SlackDeps): void {
  app.command(IMAGINE, async ({ command, ack, respond, client }) => imagine(command, ack, respond, client, deps));
  app.command(ADMIN, async ({ command, ack, respond, client }) => admin(command, ack, respond, client, deps));
}

type Client = Parameters<typeof isSlackAdmin>[0];

async function imagine(c: SlashCommand, ack: AckFn<string | RespondArguments>, respond: RespondFn, client: Client, deps: SlackDeps): Promise<void> {
  const startedAt = Date.now();
  if (isHelpRequest(c.text)) return ack(ephemeral(toMrkdwn(helpText())));
  let draft: Draft;
  try {
    draft = deps.core.prepare({ text: unescapeSlack(c.text), origin: commandOrigin(c) }); // sync: no I/O before the ack
  } catch (err) {
    logIfUnexpected(deps, err, { user: c.user_id }, 'imagine rejected');
    return ack(ephemeral(toMrkdwn(slackUserMessage(err))));
  }
  await ack();
  await deps.afterAck.turn();
  try {
    const request = await deps.core.attachImages(draft, deps.fetchPolicy);
    const out = slackSink(client, { channel: c.channel_id }, deps.core.options.logger);
    await deps.core.run(request, out.sink, { maxUploadBytes: SLACK_UPLOAD_LIMIT, startedAt, notes: draft.notes });
  } catch (err) {
    logIfUnexpected(deps, err, { user: c.user_id, channel: c.channel_id }, 'imagine failed');
    await respond(ephemeral(toMrkdwn(slackUserMessage(err)))).catch(() => undefined);
  }
}

async function admin(c: SlashCommand, ack: AckFn<string | RespondArguments>, respond: RespondFn, client: Client, deps: SlackDeps): Promise<void> {
  await ack();
  await deps.afterAck.turn();
  const log = deps.core.options.logger;
  try {
    if (!(await isSlackAdmin(client, c.user_id, deps.adminUserIds))) {
      log.warn({ user: c.user_id, team: c.team_id, text: c.text }, 'admin command refused');
      await respond(ephemeral('Only workspace admins and configured bot admins (SLACK_ADMIN_USER_IDS) can use `/sd-admin`.'));
      return;
    }
    const cmd = parseAdminText(c.text);
    if (!cmd) {
      await respond(ephemeral(ADMIN_USAGE));
      return;
    }
    const lines = await deps.core.admin(cmd, { platform: 'slack', userId: c.user_id, guildId: c.team_id, channelId: c.channel_id });
    await respond(ephemeral(toMrkdwn(lines.join('\n'))));
  } catch (err) {
    logIfUnexpected(deps, err, { user: c.user_id }, 'admin command failed');
    await respond(ephemeral(toMrkdwn(slackUserMessage(err)))).catch(() => undefined);
  }
}
