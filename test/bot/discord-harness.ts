/** Fake Discord + a queue + the real bot core and discord.js adapter, wired as `sdbot bot` wires them. */
import type { AdminQueueClient } from '../../src/queue/client.js';
import { startDiscordBot, type DiscordBot } from '../../src/bot/discord/start.js';
import { FakeDiscord, type FakeMessage, type RestCall } from '../fakes/discord/server.js';
import { startTestCore, type TestCoreOptions } from './test-core.js';

export interface Harness {
  fake: FakeDiscord;
  queue: AdminQueueClient;
  bot: DiscordBot;
  close(): Promise<void>;
}

export async function startHarness(opts: TestCoreOptions & { adminUserIds?: string[] } = {}): Promise<Harness> {
  const fake = await FakeDiscord.start();
  const { queue, core, close: closeCore } = await startTestCore(opts);
  const bot = await startDiscordBot({ token: 'fake-token', applicationId: fake.applicationId, apiUrl: fake.apiUrl, core, adminUserIds: opts.adminUserIds ?? [] });
  return {
    fake, queue, bot,
    close: async () => {
      await bot.stop();
      await closeCore();
      await fake.close();
    },
  };
}

/** The first interaction callback (the 3 s answer) for a token. */
export function waitCallback(fake: FakeDiscord, token: string): Promise<RestCall> {
  return fake.waitForCall((c) => c.method === 'POST' && c.path.includes(`/${token}/callback`));
}

/** The edit of @original that carries buttons: the final result. */
export function waitFinalEdit(fake: FakeDiscord, token: string, timeoutMs = 15_000): Promise<RestCall> {
  return fake.waitForCall((c) => c.method === 'PATCH' && c.path.includes(`/${token}/messages/@original`) && isFinal(c), timeoutMs);
}

function isFinal(c: RestCall): boolean {
  const content = String(c.body?.content ?? '');
  return (Array.isArray(c.body?.components) && (c.body.components as unknown[]).length > 0) || content.includes('⚠️');
}

export function original(fake: FakeDiscord, token: string): FakeMessage {
  const m = fake.originals.get(token);
  if (!m) throw new Error('no original message for that interaction');
  return m;
}

/** custom_ids of the buttons in a message's components. */
export function customIds(components: unknown): string[] {
  const rows = (components ?? []) as { components?: { custom_id?: string }[] }[];
  return rows.flatMap((r) => (r.components ?? []).map((b) => b.custom_id ?? ''));
}
