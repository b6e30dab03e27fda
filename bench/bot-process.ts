/**
 * The bot side of the bench in its own thread (as in production, where Discord is another machine): the real
 * core and discord.js adapter on the in-memory queue, pointed at the fake Discord's API URL from workerData.
 */
import { parentPort, workerData } from 'node:worker_threads';
import diagnostics from 'node:diagnostics_channel';
import { Events } from 'discord.js';
import { createBotCore } from '../src/bot/core/create-core.js';
import { startDiscordBot } from '../src/bot/discord/start.js';
import { MemoryQueue } from '../test/bot/memory-queue.js';
import { silentLogger } from '../test/bot/test-core.js';

const { apiUrl, applicationId } = workerData as { apiUrl: string; applicationId: string };
const { core, close } = await createBotCore({
  queue: new MemoryQueue({ stepMs: 20, steps: 4 }),
  models: [{ id: 'tiny-sd15', family: 'sd15', role: 'base', defaultSize: { width: 64, height: 64 } }],
  logger: silentLogger,
});
await core.options.state.setMaxJobsPerUser(1000);
const bot = await startDiscordBot({ token: 'bench', applicationId, apiUrl, core });

/**
 * Where the defer time goes, per interaction token (absolute ms, comparable across threads): the gateway packet
 * parsed by discord.js, the end of the synchronous part of our handler (an InteractionCreate listener added after
 * ours runs right after it), and the moment undici creates the callback request (after discord.js's REST queue).
 */
const stamps = new Map<string, { raw?: number; handled?: number; request?: number }>();
const now = () => performance.timeOrigin + performance.now();
const stamp = (token: string, k: 'raw' | 'handled' | 'request') => {
  const s = stamps.get(token) ?? {};
  s[k] ??= now();
  stamps.set(token, s);
};
bot.client.on(Events.Raw, (p: { t?: string; d?: { token?: string } }) => {
  if (p.t === 'INTERACTION_CREATE' && p.d?.token) stamp(p.d.token, 'raw');
});
bot.client.on(Events.InteractionCreate, (i) => stamp(i.token, 'handled'));
diagnostics.subscribe('undici:request:create', (msg) => {
  const path = (msg as { request: { path: string } }).request.path;
  const m = /\/interactions\/\d+\/([^/]+)\/callback/.exec(path);
  if (m?.[1]) stamp(m[1], 'request');
});

parentPort?.postMessage('ready');
parentPort?.on('message', async (m) => {
  if (m === 'stamps') {
    parentPort?.postMessage([...stamps]);
    return;
  }
  if (m !== 'stop') return;
  await bot.stop();
  await close();
  parentPort?.postMessage('stopped');
});
