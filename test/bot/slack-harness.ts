/** Fake Slack + a queue + the real bot core and Bolt adapter, wired as `sdbot bot` wires them. */
import type { AdminQueueClient } from '../../src/queue/client.js';
import { SLACK_EVENTS_PATH, startSlackBot, type SlackBot } from '../../src/bot/slack/start.js';
import { FakeSlack, type FakeSlackMessage } from '../fakes/slack/server.js';
import { startTestCore, type TestCoreOptions } from './test-core.js';

export interface SlackHarness {
  fake: FakeSlack;
  queue: AdminQueueClient;
  bot: SlackBot;
  close(): Promise<void>;
}

export async function startSlackHarness(opts: Omit<TestCoreOptions, 'logger'> & { adminUserIds?: string[]; socketMode?: boolean } = {}): Promise<SlackHarness> {
  const fake = await FakeSlack.start();
  const { queue, core, close: closeCore } = await startTestCore(opts);
  const bot = await startSlackBot({
    token: fake.botToken, apiUrl: fake.apiUrl, core, adminUserIds: opts.adminUserIds ?? [],
    ...(opts.socketMode ? { appToken: fake.appToken } : { signingSecret: fake.signingSecret, port: 0 }),
  });
  if (bot.port !== null) fake.botUrl = `http://127.0.0.1:${bot.port}${SLACK_EVENTS_PATH}`;
  return {
    fake, queue, bot,
    close: async () => {
      await bot.stop();
      await closeCore();
      await fake.close();
    },
  };
}

/** The first message (present or future) the bot posts that matches `pred`, e.g. by the prompt in its text. */
export function waitBotMessage(fake: FakeSlack, pred: (m: FakeSlackMessage) => boolean, timeoutMs = 15_000): Promise<FakeSlackMessage> {
  const mine = (m: FakeSlackMessage) => m.user === fake.botUserId && pred(m);
  const found = [...fake.messages.values()].find(mine);
  if (found) return Promise.resolve(found);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      fake.off('message', on);
      reject(new Error(`the bot posted no matching message; calls:\n${fake.calls.map((c) => c.method).join(' ')}`));
    }, timeoutMs);
    const on = (m: FakeSlackMessage) => {
      if (!mine(m)) return;
      clearTimeout(timer);
      fake.off('message', on);
      resolve(m);
    };
    fake.on('message', on);
  });
}

/** Waits until the bot's message `ts` has buttons (the result) or a warning, and returns it. */
export async function waitFinal(fake: FakeSlack, ts: string, timeoutMs = 15_000): Promise<FakeSlackMessage> {
  const done = () => {
    const m = fake.messages.get(ts);
    return m && (m.blocks.some((b) => b.type === 'actions') || m.text.includes('⚠️')) ? m : null;
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = done();
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`message ${ts} never became final; last text: ${fake.messages.get(ts)?.text}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function buttonValues(m: FakeSlackMessage): string[] {
  return m.blocks.flatMap((b) => (b.type === 'actions' ? (b.elements as { value: string }[]).map((e) => e.value) : []));
}

export function imageFileIds(m: { blocks: Record<string, unknown>[] }): string[] {
  return m.blocks.flatMap((b) => (b.type === 'image' ? [String((b.slack_file as { id: string }).id)] : []));
}
