/**
 * The bot side of the bench in its own thread (as in production, where Discord is another machine): the real
 * core and discord.js adapter on the in-memory queue, pointed at the fake Discord's API URL from workerData.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createBotCore } from '../src/bot/core/create-core.js';
import { startDiscordBot } from '../src/bot/discord/start.js';
import { MemoryQueue } from '../test/bot/memory-queue.js';
import { silentLogger } from '../test/bot/discord-harness.js';

const { apiUrl, applicationId } = workerData as { apiUrl: string; applicationId: string };
const { core, close } = await createBotCore({
  queue: new MemoryQueue({ stepMs: 20, steps: 4 }),
  models: [{ id: 'tiny-sd15', family: 'sd15', role: 'base', defaultSize: { width: 64, height: 64 } }],
  logger: silentLogger,
});
await core.options.state.setMaxJobsPerUser(1000);
const bot = await startDiscordBot({ token: 'bench', applicationId, apiUrl, core });
parentPort?.postMessage('ready');
parentPort?.on('message', async (m) => {
  if (m !== 'stop') return;
  await bot.stop();
  await close();
  parentPort?.postMessage('stopped');
});
