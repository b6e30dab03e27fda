/**
 * The web chat without a browser: its websocket protocol against the bot core on an in-memory queue, the
 * `/sd-admin` text parser, and the guards of a chat that has no login (cross-site requests refused, only buttons
 * really on a message accepted, non-admins refused when admins are configured).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { silentLogger } from '../../src/queue/logger.js';
import { parseAdminText } from '../../src/bot/web/admin-text.js';
import { startWebChat, type WebChat } from '../../src/bot/web/start.js';
import type { ChatMessage, ServerEvent } from '../../src/bot/web/wire.js';
import { MemoryQueue, solidPng } from '../bot/memory-queue.js';

class Page {
  readonly events: ServerEvent[] = [];
  readonly messages = new Map<string, ChatMessage>();
  constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => {
      const e = JSON.parse(d.toString()) as ServerEvent;
      this.events.push(e);
      if (e.type === 'message') this.messages.set(e.message.id, e.message);
      if (e.type === 'welcome') for (const m of e.history) this.messages.set(m.id, m);
      if (e.type === 'remove') this.messages.delete(e.id);
    });
  }

  static async open(chat: WebChat, userId: string, secret = `secret-of-${userId}-0123456789`): Promise<Page> {
    const ws = new WebSocket(`${chat.url}ws`.replace('http', 'ws'));
    await new Promise((r, j) => ws.once('open', r).once('error', j));
    const page = new Page(ws);
    ws.send(JSON.stringify({ type: 'hello', userId, name: userId, secret }));
    await page.until(() => page.events.some((e) => e.type === 'welcome'));
    return page;
  }

  send(event: object): void {
    this.ws.send(JSON.stringify(event));
  }

  async until<T>(f: () => T | undefined | false, ms = 10_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = f();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out; events: ${JSON.stringify(this.events).slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  finalResults(): ChatMessage[] {
    return [...this.messages.values()].filter((m) => m.kind === 'result' && m.final);
  }
}

describe('web chat protocol', () => {
  let queue: MemoryQueue;
  let chat: WebChat;
  let alice: Page;
  let bob: Page;

  beforeAll(async () => {
    queue = new MemoryQueue({ models: ['tiny-sd15', 'tiny-sd15-inpaint', 'tiny-sd15-controlnet'], steps: 3, stepMs: 5, size: 64 });
    chat = await startWebChat({
      port: 0, adminUserIds: ['alice'],
      coreOptions: {
        queue, progressIntervalMs: 0, logger: silentLogger,
        models: [
          { id: 'tiny-sd15', family: 'sd15', role: 'base', defaultSize: { width: 64, height: 64 }, isDefault: true },
          { id: 'tiny-sd15-inpaint', family: 'sd15', role: 'inpaint', defaultSize: { width: 64, height: 64 } },
          { id: 'tiny-sd15-controlnet', family: 'sd15', role: 'controlnet', defaultSize: { width: 64, height: 64 } },
        ],
      },
    });
    [alice, bob] = [await Page.open(chat, 'alice'), await Page.open(chat, 'bob')];
  });
  afterAll(async () => {
    alice?.ws.close();
    bob?.ws.close();
    await chat?.stop();
  });

  it('/imagine flags reach the request; everyone sees the progress and the result, with the sender mentioned', async () => {
    alice.send({ type: 'send', text: '/imagine a lighthouse --seed 7 --steps 9 --no fog --size 128x64 --count 2' });
    const result = await bob.until(() => bob.finalResults()[0]);
    const request = queue.enqueued.at(-1)?.request;
    expect(request).toMatchObject({ prompt: 'a lighthouse', seed: '7', steps: 9, negativePrompt: 'fog', count: 2, origin: { platform: 'web', userId: 'alice' } });
    expect([request?.width, request?.height]).toEqual([128, 64]);
    expect(result.mention).toBe('alice');
    expect(result.buttons.flat().map((b) => b.label)).toEqual(expect.arrayContaining(['U1', 'U2', 'V1', 'V2']));
    expect(bob.events.some((e) => e.type === 'message' && e.message.kind === 'progress' && e.message.images.length > 0)).toBe(true);
    const png = await fetch(new URL(result.images[0]?.url ?? '', chat.url));
    expect(png.headers.get('content-type')).toBe('image/png');
  });

  it('buttons: only ids that are on the message; V2 makes an img2img job from that cell; delete by its owner only', async () => {
    const grid = alice.finalResults()[0]!;
    const before = queue.enqueued.length;
    alice.send({ type: 'click', messageId: grid.id, buttonId: 'sd1:v:0:some-other-job' });
    await alice.until(() => [...alice.messages.values()].some((m) => m.kind === 'error' && m.lines.join().includes("doesn't work")));
    expect(queue.enqueued.length).toBe(before);
    const v2 = grid.buttons.flat().find((b) => b.label === 'V2')!;
    bob.send({ type: 'click', messageId: grid.id, buttonId: v2.id });
    await bob.until(() => bob.finalResults().length === 2);
    expect(queue.enqueued.at(-1)?.request).toMatchObject({ kind: 'img2img', origin: { userId: 'bob' } });
    const del = grid.buttons.flat().find((b) => b.label === 'Delete')!;
    bob.send({ type: 'click', messageId: grid.id, buttonId: del.id });
    await bob.until(() => [...bob.messages.values()].some((m) => m.ephemeral && m.lines.join().includes('Only the person')));
    alice.send({ type: 'click', messageId: grid.id, buttonId: del.id });
    await bob.until(() => !bob.messages.has(grid.id));
  });

  it('an uploaded picture plus mask, sent as a reply to nothing, is an inpaint job on the inpaint model', async () => {
    const up = async (shade: number) => {
      const res = await fetch(new URL('/upload?name=p.png', chat.url), { method: 'POST', body: Buffer.from(await solidPng(64, 64, shade)), headers: { 'content-type': 'image/png' } });
      return ((await res.json()) as { url: string }).url.slice('/files/'.length);
    };
    alice.send({ type: 'send', text: 'a red door', files: [await up(90), await up(255)] });
    await alice.until(() => queue.enqueued.at(-1)?.request.kind === 'inpaint');
    expect(queue.enqueued.at(-1)?.request).toMatchObject({ model: 'tiny-sd15-inpaint', prompt: 'a red door' });
    expect(queue.enqueued.at(-1)?.request.initImage).not.toBeNull();
    expect(queue.enqueued.at(-1)?.request.maskImage).not.toBeNull();
  });

  it('a picture in the control-image slot, or sent with --control, is a ControlNet job on the ControlNet model', async () => {
    const upload = async (bytes: Uint8Array) => {
      const res = await fetch(new URL('/upload?name=edges.png', chat.url), { method: 'POST', body: Buffer.from(bytes), headers: { 'content-type': 'image/png' } });
      return ((await res.json()) as { url: string }).url.slice('/files/'.length);
    };
    const inputOf = (ref: unknown) => Buffer.from(queue.inputs.get((ref as { key: string }).key) ?? []);
    const edges = await solidPng(64, 64, 200);
    alice.send({ type: 'send', text: '/imagine a castle --control canny --control-scale 0.6', control: await upload(edges) });
    await alice.until(() => queue.enqueued.at(-1)?.request.prompt === 'a castle');
    const slotted = queue.enqueued.at(-1)!.request;
    expect(slotted).toMatchObject({ kind: 'controlnet', model: 'tiny-sd15-controlnet', controlPreprocess: 'canny', controlScale: 0.6, initImage: null });
    expect(inputOf(slotted.controlImage).equals(Buffer.from(edges))).toBe(true);
    // Everyone sees the control picture on the sender's message.
    await bob.until(() => [...bob.messages.values()].find((m) => m.kind === 'user' && m.text?.includes('a castle') && m.images.length === 1));

    // Replying to a result with an ordinary attachment and --control: the attachment (newest picture) is the control image.
    const grid = await alice.until(() => alice.finalResults().find((m) => m.images.length > 0));
    const shapes = await solidPng(64, 64, 30);
    alice.send({ type: 'send', text: '/imagine a tower --control none', files: [await upload(shapes)], replyTo: grid.id });
    await alice.until(() => queue.enqueued.at(-1)?.request.prompt === 'a tower');
    const flagged = queue.enqueued.at(-1)!.request;
    expect(flagged).toMatchObject({ kind: 'controlnet', model: 'tiny-sd15-controlnet', controlPreprocess: 'none', initImage: null, maskImage: null });
    expect(inputOf(flagged.controlImage).equals(Buffer.from(shapes))).toBe(true);

    // A control image beside an image to work on: ControlNet img2img on the ControlNet model.
    alice.send({ type: 'send', text: '/imagine a gate --strength 0.5', files: [await upload(shapes)], control: await upload(edges) });
    await alice.until(() => queue.enqueued.at(-1)?.request.prompt === 'a gate');
    const both = queue.enqueued.at(-1)!.request;
    expect(both).toMatchObject({ kind: 'img2img', model: 'tiny-sd15-controlnet', strength: 0.5, maskImage: null });
    expect(inputOf(both.initImage).equals(Buffer.from(shapes))).toBe(true);
    expect(inputOf(both.controlImage).equals(Buffer.from(edges))).toBe(true);
  });

  it('errors and admin answers go only to the sender; non-admins are refused', async () => {
    bob.send({ type: 'send', text: '/imagine a cat --steps 999' });
    const err = await bob.until(() => [...bob.messages.values()].find((m) => m.kind === 'error' && m.ephemeral && m.lines.join().includes('steps')));
    await new Promise((r) => setTimeout(r, 100));
    expect(alice.messages.has(err.id)).toBe(false);
    bob.send({ type: 'send', text: '/sd-admin limits 3' });
    await bob.until(() => [...bob.messages.values()].some((m) => m.lines.join().includes('Only the web chat admins')));
    alice.send({ type: 'send', text: '/sd-admin limits 3' });
    await alice.until(() => [...alice.messages.values()].some((m) => m.lines.join().includes('3 job(s)')));
  });

  it('a user id cannot be taken over without its browser secret; malformed events are dropped', async () => {
    const ws = new WebSocket(`${chat.url}ws`.replace('http', 'ws'));
    await new Promise((r) => ws.once('open', r));
    for (const junk of ['nope', '[]', 'null', '{"type":"send","text":"/imagine x","files":"abc"}', '{"type":"click"}']) ws.send(junk);
    ws.send(JSON.stringify({ type: 'hello', userId: 'alice', name: 'mallory', secret: 'a-guess-that-is-long-enough' }));
    const code = await new Promise<number>((r) => ws.once('close', (c) => r(c)));
    expect(code).toBe(4001);
    alice.send({ type: 'send', text: '/imagine still here --steps 1', files: 'abc' });
    alice.send({ type: 'send', text: '/sd-admin limits' });
    await alice.until(() => [...alice.messages.values()].filter((m) => m.lines.join().includes('job(s) queued or running at once')).length >= 2);
  });

  it('refuses cross-site uploads and websockets', async () => {
    const res = await fetch(new URL('/upload', chat.url), { method: 'POST', body: 'x', headers: { origin: 'http://evil.example' } });
    expect(res.status).toBe(403);
    const ws = new WebSocket(`${chat.url}ws`.replace('http', 'ws'), { headers: { origin: 'http://evil.example' } });
    await expect(new Promise((r, j) => ws.once('open', r).once('error', j))).rejects.toThrow(/403/);
  });
});

describe('/sd-admin text', () => {
  it('parses every subcommand', () => {
    expect(parseAdminText('load tiny-sd15 w1')).toEqual({ name: 'load', model: 'tiny-sd15', worker: 'w1' });
    expect(parseAdminText('pause')).toEqual({ name: 'pause' });
    expect(parseAdminText('default channel --steps 20 --sampler euler_a')).toEqual({ name: 'default', scope: 'channel', steps: 20, sampler: 'euler_a' });
    expect(parseAdminText('default server --clear')).toEqual({ name: 'default', scope: 'server', clear: true });
    expect(parseAdminText('limits')).toEqual({ name: 'limits' });
    expect(parseAdminText('ban web-123')).toEqual({ name: 'ban', userId: 'web-123' });
    expect(() => parseAdminText('cancel')).toThrow(/needs a job id/);
    expect(() => parseAdminText('limits zero')).toThrow(/whole number/);
    expect(() => parseAdminText('default galaxy')).toThrow(/server.*channel/);
    expect(() => parseAdminText('reboot')).toThrow(/don't know/);
  });
});
