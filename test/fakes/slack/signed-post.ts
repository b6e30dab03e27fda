/**
 * Slack's side of request signing: `v0=` + hex HMAC-SHA256(secret, `v0:{timestamp}:{raw body}`) in
 * x-slack-signature, the timestamp in x-slack-request-timestamp
 * (https://docs.slack.dev/authentication/verifying-requests-from-slack).
 */
import { createHmac } from 'node:crypto';
import { Agent, request } from 'node:http';

export interface Tamper {
  /** Sign with this secret instead (a forgery). */
  secret?: string;
  /** Pretend the request was made this long ago (a replay). */
  ageSeconds?: number;
}

export interface PostResult {
  status: number;
  text: string;
  /** From sending the request to the end of the response. */
  ms: number;
}

export function slackSignature(body: string, timestamp: number, secret: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

// node:http rather than fetch: far less client-side cost per request, so a burst measures the bot, not the sender.
const agent = new Agent({ keepAlive: true, maxSockets: Infinity });

export function signedPost(url: string, body: string, contentType: string, secret: string, tamper: Tamper = {}): Promise<PostResult> {
  const timestamp = Math.floor(Date.now() / 1000) - (tamper.ageSeconds ?? 0);
  const headers = {
    'content-type': contentType, 'content-length': Buffer.byteLength(body),
    'x-slack-request-timestamp': String(timestamp), 'x-slack-signature': slackSignature(body, timestamp, tamper.secret ?? secret),
  };
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Closes idle keep-alive sockets (so test processes exit promptly). */
export function closeSenderSockets(): void {
  agent.destroy();
}
