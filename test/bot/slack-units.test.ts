import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OPTIONS } from '../../src/bot/core/options.js';
import { errorMessage, type BotMessage } from '../../src/bot/core/messages.js';
import { resultButtons } from '../../src/bot/core/actions.js';
import { parseAdminText } from '../../src/bot/slack/admin-command.js';
import { slackFetchPolicy } from '../../src/bot/slack/files.js';
import { imagineUsageHint, slackManifest } from '../../src/bot/slack/manifest.js';
import { fileIdsOf, renderBlocks, sections, toMrkdwn, unescapeSlack } from '../../src/bot/slack/render.js';
import { slackOptionsFromEnv } from '../../src/bot/slack/start.js';
import { SLACK_MANIFEST_FILE, slackManifestJson } from '../../src/cli/commands.js';

describe('Slack app manifest', () => {
  it('is committed up to date in commands/ (run `sdbot commands generate` after changing the table)', () => {
    expect(readFileSync(SLACK_MANIFEST_FILE, 'utf8')).toBe(slackManifestJson());
  });

  it('lists both commands, every flag of the options table, the events and the interactivity URL', () => {
    const m = slackManifest('https://bot.test') as {
      features: { slash_commands: { command: string; url: string; usage_hint: string }[] };
      oauth_config: { scopes: { bot: string[] } };
      settings: { event_subscriptions: { bot_events: string[]; request_url: string }; interactivity: { is_enabled: boolean; request_url: string } };
    };
    expect(m.features.slash_commands.map((c) => c.command)).toEqual(['/imagine', '/sd-admin']);
    expect(m.features.slash_commands.every((c) => c.url === 'https://bot.test/slack/events')).toBe(true);
    for (const o of OPTIONS) if (o.flags[0]) expect(imagineUsageHint()).toContain(`[${o.flags[0]} `);
    expect(m.oauth_config.scopes.bot).toEqual(expect.arrayContaining(['commands', 'chat:write', 'files:write', 'files:read', 'app_mentions:read', 'users:read']));
    expect(m.settings.event_subscriptions.bot_events).toEqual(['app_mention']);
    expect(m.settings.interactivity).toEqual({ is_enabled: true, request_url: 'https://bot.test/slack/events' });
  });
});

describe('Slack rendering', () => {
  it('turns the core message model into mrkdwn sections, image blocks and button rows within Slack limits', () => {
    const m: BotMessage = { kind: 'result', title: 'a <b> & *c*', lines: ['seed `42` · **bold**'], images: [{ name: 'x.png', data: new Uint8Array(1), mime: 'image/png' }], buttons: resultButtons('job-1', 4), mention: 'U1', final: true };
    const { text, blocks } = renderBlocks(m, ['F1']);
    expect(text).toBe('*a &lt;b&gt; &amp; ∗c∗* · <@U1>\nseed `42` · *bold*');
    expect(blocks.map((b) => b.type)).toEqual(['section', 'image', 'actions', 'actions', 'actions']);
    expect(fileIdsOf(blocks)).toEqual(['F1']);
    const buttons = blocks.filter((b) => b.type === 'actions').flatMap((b) => (b as { elements: { value: string; action_id: string; style?: string }[] }).elements);
    expect(buttons.map((b) => b.value)).toContain('sd1:v:3:job-1');
    expect(buttons.every((b) => b.value === b.action_id && b.value.length <= 2000)).toBe(true);
    expect(buttons.find((b) => b.value.startsWith('sd1:d:'))?.style).toBe('danger');
  });

  it('splits long text into sections of at most 3000 characters and escapes only what Slack needs', () => {
    const long = Array.from({ length: 100 }, (_, i) => `line ${i} ${'x'.repeat(60)}`).join('\n');
    const s = sections(long) as { text: { text: string } }[];
    expect(s.length).toBeGreaterThan(1);
    expect(s.every((b) => b.text.text.length <= 3000)).toBe(true);
    expect(s.map((b) => b.text.text).join('\n')).toBe(long);
    expect(toMrkdwn(errorMessage('x < y').lines[0] ?? '')).toBe('⚠️ x &lt; y');
    expect(unescapeSlack('cats &amp; dogs &lt;3')).toBe('cats & dogs <3');
  });
});

describe('/sd-admin text', () => {
  it('parses every subcommand', () => {
    expect(parseAdminText('models')).toEqual({ name: 'models' });
    expect(parseAdminText('load sdxl w1')).toEqual({ name: 'load', model: 'sdxl', worker: 'w1' });
    expect(parseAdminText('pause')).toEqual({ name: 'pause' });
    expect(parseAdminText('resume gpu-2')).toEqual({ name: 'resume', worker: 'gpu-2' });
    expect(parseAdminText('default channel model=m sampler=euler steps=20 count=2')).toEqual({ name: 'default', scope: 'channel', model: 'm', sampler: 'euler', steps: 20, count: 2 });
    expect(parseAdminText('default workspace clear')).toEqual({ name: 'default', scope: 'server', clear: true });
    expect(parseAdminText('cancel abc')).toEqual({ name: 'cancel', jobId: 'abc' });
    expect(parseAdminText('limits 5')).toEqual({ name: 'limits', maxJobsPerUser: 5 });
    expect(parseAdminText('ban <@U123|bob>')).toEqual({ name: 'ban', userId: 'U123' });
    expect(parseAdminText('unban U123ABC')).toEqual({ name: 'unban', userId: 'U123ABC' });
    expect(parseAdminText('  ')).toBeNull();
  });

  it('explains mistakes', () => {
    expect(() => parseAdminText('ban bob')).toThrow(/@-mention/);
    expect(() => parseAdminText('default here')).toThrow(/workspace.*channel/);
    expect(() => parseAdminText('default channel steps=0')).toThrow(/1 to 150/);
    expect(() => parseAdminText('lod x')).toThrow(/Did you mean `load`/);
    expect(() => parseAdminText('load')).toThrow(/needs a model id/);
  });
});

describe('Slack configuration', () => {
  it('is off without a bot token, needs a signing secret or an app token, and reads the rest', () => {
    expect(slackOptionsFromEnv({})).toBeNull();
    expect(() => slackOptionsFromEnv({ SLACK_BOT_TOKEN: 'xoxb' })).toThrow(/SLACK_SIGNING_SECRET/);
    expect(slackOptionsFromEnv({ SLACK_BOT_TOKEN: 'xoxb', SLACK_SIGNING_SECRET: 's' })).toEqual({ token: 'xoxb', signingSecret: 's', port: 3000, adminUserIds: [] });
    expect(slackOptionsFromEnv({ SLACK_BOT_TOKEN: 'xoxb', SLACK_APP_TOKEN: 'xapp', SLACK_PORT: '8080', SLACK_API_URL: 'http://127.0.0.1:9/api/', SLACK_ADMIN_USER_IDS: 'U1, U2,' }))
      .toEqual({ token: 'xoxb', appToken: 'xapp', port: 8080, apiUrl: 'http://127.0.0.1:9/api/', adminUserIds: ['U1', 'U2'] });
    expect(() => slackOptionsFromEnv({ SLACK_BOT_TOKEN: 'x', SLACK_SIGNING_SECRET: 's', SLACK_PORT: 'http' })).toThrow(/SLACK_PORT/);
  });

  it('fetches pictures only from Slack’s file host (or the configured API host) with the bot token', () => {
    expect(slackFetchPolicy('xoxb-1', undefined)).toEqual({ allowedHosts: ['files.slack.com'], allowHttp: false, headers: { Authorization: 'Bearer xoxb-1' } });
    expect(slackFetchPolicy('t', 'https://slack.com/api/').allowedHosts).toEqual(['files.slack.com']);
    expect(slackFetchPolicy('t', 'http://127.0.0.1:5000/api/')).toMatchObject({ allowedHosts: ['files.slack.com', '127.0.0.1:5000'], allowHttp: true });
  });
});

describe('AckFirstGate', () => {
  it('releases waiters in order, one per event-loop turn, with I/O callbacks between them', async () => {
    const { AckFirstGate } = await import('../../src/bot/slack/ack-first.js');
    const gate = new AckFirstGate();
    const order: string[] = [];
    const waits = [1, 2, 3].map((k) => gate.turn().then(() => order.push(`job${k}`)));
    // An immediate queued after the waiters still runs between the first and the second release.
    setImmediate(() => order.push('io'));
    await Promise.all(waits);
    expect(order).toEqual(['job1', 'io', 'job2', 'job3']);
  });
});
