/**
 * The Slack side of the bench in its own thread (as in production, where Slack is another machine): the real
 * core and Bolt adapter (HTTP receiver) on the in-memory queue, pointed at the fake Slack from workerData.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createBotCore } from '../src/bot/core/create-core.js';
import { startSlackBot } from '../src/bot/slack/start.js';
import { MemoryQueue } from '../test/bot/memory-queue.js';
import { silentLogger } from '../test/bot/test-core.js';

const { apiUrl, token, signingSecret } = workerData as { apiUrl: string; token: string; signingSecret: string };
const { core, close } = await createBotCore({
  queue: new MemoryQueue({ stepMs: 20, steps: 4 }),
  models: [{ id: 'tiny-sd15', family: 'sd15', role: 'base', defaultSize: { width: 64, height: 64 } }],
  logger: silentLogger,
});
await core.options.state.setMaxJobsPerUser(1000);
const bot = await startSlackBot({ token, signingSecret, apiUrl, port: 0, core });
// Inside the bot: from the request reaching its HTTP server to the ack response being written.
const inside: number[] = [];
bot.server?.on('request', (_req, res) => {
  const t = performance.now();
  res.on('finish', () => inside.push(performance.now() - t));
});
parentPort?.postMessage({ port: bot.port });
parentPort?.on('message', async (m) => {
  if (m === 'latencies') {
    parentPort?.postMessage(inside.splice(0));
    return;
  }
  if (m !== 'stop') return;
  await bot.stop();
  await close();
  parentPort?.postMessage('stopped');
});
