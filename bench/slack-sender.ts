/**
 * Slack's side of the ack bench in its own thread: signs and sends the prepared request bodies all at once and
 * reports each one's time to response, so the fake Web API's work (in the main thread) does not delay the sender.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { closeSenderSockets, signedPost } from '../test/fakes/slack/signed-post.js';

const { url, secret, bodies } = workerData as { url: string; secret: string; bodies: string[] };
const startedAt = Date.now();
const t0 = performance.now();
const results = await Promise.all(bodies.map((b) => signedPost(url, b, 'application/x-www-form-urlencoded', secret)));
const wallMs = performance.now() - t0;
closeSenderSockets();
parentPort?.postMessage({ startedAt, wallMs, results: results.map((r) => ({ status: r.status, ms: r.ms })) });
