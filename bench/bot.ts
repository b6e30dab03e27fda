/**
 * `npm run bench:bot`: Discord defer latency under a burst of 200 concurrent /imagine interactions from the fake
 * gateway (time from the dispatch leaving the fake to the deferral arriving at its REST API; target p99 ≤ 250 ms),
 * the same for Slack (time from sending a signed /imagine request to the bot's HTTP receiver to its ack response;
 * target p99 ≤ 250 ms), then the time from interaction to final message for one job on the tiny SD 1.5 model
 * (real Redis + engine).
 */
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { createEngine } from '../src/engine/create-engine.js';
import { RedisQueueClient } from '../src/queue/redis-client.js';
import { EngineWorker } from '../src/queue/worker.js';
import { chatInput, fakeUser, send } from '../test/fakes/discord/payloads.js';
import { startRedis } from '../test/helpers/redis-server.js';
import { startHarness, waitFinalEdit } from '../test/bot/discord-harness.js';
import { once } from 'node:events';
import { availableParallelism, loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';
import { FakeDiscord, type RestCall } from '../test/fakes/discord/server.js';
import { FakeSlack } from '../test/fakes/slack/server.js';
import { waitBotMessage, waitFinal } from '../test/bot/slack-harness.js';
import { SLACK_EVENTS_PATH } from '../src/bot/slack/start.js';

const BURST = Number(process.env.BENCH_BURST ?? 200);

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

async function deferBurst(): Promise<void> {
  // The fake Discord stays in this thread; the bot runs in a worker thread, so the fake's own work is not
  // counted against the bot's deadline (real Discord is another machine).
  const fake = await FakeDiscord.start();
  fake.setMaxListeners(0);
  const entry = new URL('./bot-process.ts', import.meta.url).href;
  const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  const bot = new Worker(boot, { eval: true, workerData: { apiUrl: fake.apiUrl, applicationId: fake.applicationId } });
  await once(bot, 'message');
  await fake.ready;
  const h = { fake };
  try {
    // Warm-up: first-call costs (JIT, sockets) are not what a running bot sees.
    const warm = send(h.fake, chatInput(h.fake, fakeUser('warm'), 'imagine', { prompt: 'warm up --count 1' }));
    await waitFinalEdit(h.fake, warm.token);
    const users = Array.from({ length: BURST }, (_, k) => fakeUser(`u${k}`));
    const sent = users.map((u, k) => {
      const i = chatInput(h.fake, u, 'imagine', { prompt: `burst ${k} --count 1 --steps 2` });
      return { i, at: 0 };
    });
    // One listener for all callbacks: a waitCallback per token would run 200 listeners on every REST call in the
    // fake's thread and delay the very arrivals being timed.
    const arrivedAt = new Map<string, number>();
    const allArrived = new Promise<void>((resolve) => {
      const onCall = (c: RestCall) => {
        const m = c.method === 'POST' ? /^\/interactions\/\d+\/([^/]+)\/callback$/.exec(c.path) : null;
        if (!m?.[1] || arrivedAt.has(m[1])) return;
        arrivedAt.set(m[1], c.at);
        if (arrivedAt.size === sent.length) {
          fake.off('call', onCall);
          resolve();
        }
      };
      fake.on('call', onCall);
    });
    const t0 = performance.now();
    for (const s of sent) {
      s.at = performance.now();
      send(h.fake, s.i);
    }
    const loopMs = performance.now() - t0;
    await allArrived;
    const arrivals = sent.map((s) => arrivedAt.get(s.i.token)!);
    const latencies = arrivals.map((at, k) => at - sent[k]!.at);
    const wall = performance.now() - t0;
    latencies.sort((a, b) => a - b);
    console.log(`defer latency, burst of ${BURST} /imagine: p50 ${pct(latencies, 50).toFixed(1)} ms, p99 ${pct(latencies, 99).toFixed(1)} ms, max ${latencies.at(-1)?.toFixed(1)} ms (all deferred in ${wall.toFixed(0)} ms, 1-min load average ${loadavg()[0]?.toFixed(1)} on ${availableParallelism()} CPUs)`);
    bot.postMessage('stamps');
    const [stamps] = (await once(bot, 'message')) as [[string, { raw?: number; handled?: number; request?: number }][]];
    const byToken = new Map(stamps);
    const abs = (t: number) => performance.timeOrigin + t;
    const parts = { gateway: [] as number[], handler: [] as number[], restQueue: [] as number[], http: [] as number[] };
    sent.forEach((s, k) => {
      const st = byToken.get(s.i.token);
      if (!st?.raw || !st.handled || !st.request) return;
      parts.gateway.push(st.raw - abs(s.at));
      parts.handler.push(st.handled - st.raw);
      parts.restQueue.push(st.request - st.handled);
      parts.http.push(abs(arrivals[k]!) - st.request);
    });
    const show = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      return `p50 ${pct(s, 50).toFixed(1)} / p99 ${pct(s, 99).toFixed(1)} ms`;
    };
    console.log(
      `  where it goes (${parts.gateway.length} timed): fake sends → discord.js parsed the packet ${show(parts.gateway)}; ` +
        `→ our handler's sync part done (interaction built, options, prepare, deferReply issued) ${show(parts.handler)}; ` +
        `→ undici request created (discord.js REST queue) ${show(parts.restQueue)}; → fake received it ${show(parts.http)}. ` +
        `The fake's own send loop held its thread for ${loopMs.toFixed(0)} ms (nothing leaves, and no request is read, until it ends).`,
    );
    await Promise.all(sent.map((s) => waitFinalEdit(h.fake, s.i.token, 120_000)));
    console.log(`burst: all ${BURST} final messages delivered ${((performance.now() - t0) / 1000).toFixed(1)} s after the first interaction`);
  } finally {
    bot.postMessage('stop');
    await once(bot, 'message');
    await bot.terminate();
    await fake.close();
  }
}

/**
 * Slack: the bot's HTTP receiver in one worker thread, 200 signed /imagine requests sent at once from another
 * (the fake Web API stays in this one), as Slack's servers would send them.
 */
async function slackAckBurst(): Promise<void> {
  const fake = await FakeSlack.start();
  const entry = new URL('./slack-bot-process.ts', import.meta.url).href;
  const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  const bot = new Worker(boot, { eval: true, workerData: { apiUrl: fake.apiUrl, token: fake.botToken, signingSecret: fake.signingSecret } });
  const [{ port }] = (await once(bot, 'message')) as [{ port: number }];
  fake.botUrl = `http://127.0.0.1:${port}${SLACK_EVENTS_PATH}`;
  try {
    const warm = await fake.sendCommand('UWARM', '/imagine', 'warm up --count 1').result;
    if (warm.status !== 200) throw new Error(`warm-up command answered ${warm.status}`);
    await waitFinal(fake, (await waitBotMessage(fake, (m) => m.text.includes('warm up'))).ts);
    bot.postMessage('latencies');
    await once(bot, 'message');
    const bodies = Array.from({ length: BURST }, (_, k) => new URLSearchParams(fake.commandPayload(`U${k}`, '/imagine', `slack burst ${k} --count 1 --steps 2`)).toString());
    const senderEntry = new URL('./slack-sender.ts', import.meta.url).href;
    const sender = new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(senderEntry)}); })`, { eval: true, workerData: { url: fake.botUrl, secret: fake.signingSecret, bodies } });
    const [{ results, wallMs: wall, startedAt }] = (await once(sender, 'message')) as [{ startedAt: number; wallMs: number; results: { status: number; ms: number }[] }];
    const refused = results.filter((r) => r.status !== 200).length;
    const latencies = results.map((r) => r.ms).sort((a, b) => a - b);
    bot.postMessage('latencies');
    const [inside] = (await once(bot, 'message')) as [number[]];
    inside.sort((a, b) => a - b);
    console.log(`slack ack latency, burst of ${BURST} /imagine (signed HTTP, sender to response): p50 ${pct(latencies, 50).toFixed(1)} ms, p99 ${pct(latencies, 99).toFixed(1)} ms, max ${latencies.at(-1)?.toFixed(1)} ms (all acked in ${wall.toFixed(0)} ms${refused ? `; ${refused} not 200` : ''}; 1-min load average ${loadavg()[0]?.toFixed(1)})`);
    console.log(`slack ack latency inside the bot (request received → ack written): p50 ${pct(inside, 50).toFixed(1)} ms, p99 ${pct(inside, 99).toFixed(1)} ms, max ${inside.at(-1)?.toFixed(1)} ms`);
    await Promise.all(Array.from({ length: BURST }, async (_, k) => waitFinal(fake, (await waitBotMessage(fake, (m) => m.text.includes(`slack burst ${k}*`), 120_000)).ts, 120_000)));
    console.log(`slack burst: all ${BURST} results delivered ${((Date.now() - startedAt) / 1000).toFixed(1)} s after the first command`);
  } finally {
    bot.postMessage('stop');
    await once(bot, 'message');
    await bot.terminate();
    await fake.close();
  }
}

async function tinyModelRoundTrip(): Promise<void> {
  const redis = await startRedis();
  const inputs = new Redis(redis.url, { maxRetriesPerRequest: null });
  const engine = await createEngine({ fetchInput: async (k) => ((b) => (b ? new Uint8Array(b) : null))(await inputs.getBuffer(k)) });
  const dir = join(import.meta.dirname, '..', 'test', 'fixtures', 'models', 'tiny-sd15');
  const worker = new EngineWorker({ redisUrl: redis.url, prefix: redis.prefix, engine, models: [{ id: 'tiny-sd15', dir, load: true }], heartbeatMs: 200 });
  await worker.start();
  const client = await RedisQueueClient.connect({ redisUrl: redis.url, prefix: redis.prefix });
  const h = await startHarness({ queue: client });
  try {
    const times: number[] = [];
    for (let k = 0; k < 5; k++) {
      const t = performance.now();
      const i = send(h.fake, chatInput(h.fake, fakeUser(`t${k}`), 'imagine', { prompt: `a photo of a cat --seed ${k} --steps 20` }));
      await waitFinalEdit(h.fake, i.token, 120_000);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    console.log(`interaction → final message, tiny-sd15, 4 images 64×64, 20 steps (5 runs): median ${pct(times, 50).toFixed(0)} ms, min ${times[0]?.toFixed(0)} ms`);
  } finally {
    await h.close();
    await client.close();
    await worker.shutdown(1000);
    inputs.disconnect();
    await redis.stop();
  }
}

// BENCH_PARTS=slack (or discord, tiny, comma-separated) runs only those parts.
const PARTS = new Set((process.env.BENCH_PARTS ?? 'discord,slack,tiny').split(',').map((s) => s.trim()));
if (PARTS.has('discord')) await deferBurst();
if (PARTS.has('slack')) await slackAckBurst();
if (PARTS.has('tiny')) await tinyModelRoundTrip();
process.exit(0);
