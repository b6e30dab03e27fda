import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MANAGE_GUILD, buttonClick, chatInput, fakeUser, messageCommand, modalSubmit, send, userMessage } from '../fakes/discord/payloads.js';
import { customIds, original, startHarness, waitCallback, waitFinalEdit, type Harness } from './discord-harness.js';
import { solidPng, type MemoryQueue } from './memory-queue.js';

describe('Discord buttons, attachments, reply-with-image, Remix and admin', () => {
  let h: Harness;
  let queue: MemoryQueue;
  const alice = fakeUser('alice');
  const bob = fakeUser('bob');
  const manager = fakeUser('manager', MANAGE_GUILD);
  const listedAdmin = fakeUser('listed');

  beforeAll(async () => {
    h = await startHarness({
      adminUserIds: [listedAdmin.id],
      models: [
        { id: 'tiny-sd15', family: 'sd15', role: 'base', defaultSize: { width: 64, height: 64 } },
        { id: 'tiny-sd15-inpaint', family: 'sd15', role: 'inpaint', defaultSize: { width: 64, height: 64 } },
        { id: 'tiny-sd15-controlnet', family: 'sd15', role: 'controlnet', defaultSize: { width: 64, height: 64 } },
      ],
    });
    queue = h.queue as MemoryQueue;
    queue.modelList = ['tiny-sd15', 'tiny-sd15-inpaint', 'tiny-sd15-controlnet'];
    await h.bot.core.catalog.refresh();
  });
  afterAll(async () => h.close());

  async function imagine(prompt: string, user = alice) {
    const i = send(h.fake, chatInput(h.fake, user, 'imagine', { prompt }));
    await waitFinalEdit(h.fake, i.token);
    const job = queue.enqueued.at(-1);
    if (!job) throw new Error('nothing queued');
    return { message: original(h.fake, i.token), jobId: job.jobId };
  }

  it('V2 under a grid makes variations of image 2 (its grid cell), as a new result', async () => {
    const { message, jobId } = await imagine('a red fox --seed 7');
    const v2 = customIds(message.components).find((id) => id === `sd1:v:1:${jobId}`);
    expect(v2).toBeDefined();
    const click = send(h.fake, buttonClick(h.fake, bob, message, v2 ?? ''));
    expect((await waitCallback(h.fake, click.token)).body?.type).toBe(5);
    const final = await waitFinalEdit(h.fake, click.token);
    expect(final.files).toHaveLength(1);
    const follow = queue.enqueued.at(-1);
    expect(follow?.request).toMatchObject({ kind: 'img2img', model: 'tiny-sd15', prompt: 'a red fox', strength: 0.6, width: 64, height: 64 });
    expect(follow?.request.origin.userId).toBe(bob.id);
    expect(follow?.request.seed).not.toBe('7');
    // The init image is the top-right cell of the grid: image 2, seed 8.
    const ref = follow?.request.initImage;
    const init = ref?.kind === 'redis' ? queue.inputs.get(ref.key) : undefined;
    const expected = await sharp(await solidPng(64, 64, 8)).raw().toBuffer();
    expect(Buffer.compare(await sharp(init).raw().toBuffer(), expected)).toBe(0);
    // While the queue still stores the result, the button uses the original PNG itself (not a crop of the upload).
    const stored = await queue.getResult(jobId);
    expect(Buffer.compare(Buffer.from(init!), Buffer.from((await queue.getImage(stored![1]!.key))!))).toBe(0);
  });

  it('once the stored result has expired, a button crops the picture on the message instead', async () => {
    const { message, jobId } = await imagine('a green frog --seed 20');
    queue.expireResult(jobId);
    expect(await queue.getResult(jobId)).toBeNull();
    const click = send(h.fake, buttonClick(h.fake, bob, message, `sd1:v:2:${jobId}`));
    await waitFinalEdit(h.fake, click.token);
    const ref = queue.enqueued.at(-1)?.request.initImage;
    const init = ref?.kind === 'redis' ? queue.inputs.get(ref.key) : undefined;
    // Image 3 (seed 22) is the bottom-left cell of the grid.
    const expected = await sharp(await solidPng(64, 64, 22)).raw().toBuffer();
    expect(Buffer.compare(await sharp(init).raw().toBuffer(), expected)).toBe(0);
  });

  it('U1 without an upscaler runs a 2× img2img pass; re-roll keeps the request with a new seed', async () => {
    const { message, jobId } = await imagine('a blue bird --seed 3 --count 2');
    const u1 = send(h.fake, buttonClick(h.fake, alice, message, `sd1:u:0:${jobId}`));
    await waitFinalEdit(h.fake, u1.token);
    expect(queue.enqueued.at(-1)?.request).toMatchObject({ kind: 'img2img', width: 128, height: 128, strength: 0.3, count: 1, seed: '3' });
    const reroll = send(h.fake, buttonClick(h.fake, alice, message, `sd1:r:0:${jobId}`));
    await waitFinalEdit(h.fake, reroll.token);
    const again = queue.enqueued.at(-1)?.request;
    expect(again).toMatchObject({ kind: 'txt2img', prompt: 'a blue bird', count: 2 });
    expect(again?.seed).not.toBe('3');
  });

  it('Delete: refused for others, done for the owner', async () => {
    const { message, jobId } = await imagine('a tiny house --count 1');
    const ids = customIds(message.components);
    expect(ids).toEqual(expect.arrayContaining([`sd1:vs:0:${jobId}`, `sd1:z2:0:${jobId}`, `sd1:d:0:${jobId}`]));
    const byBob = send(h.fake, buttonClick(h.fake, bob, message, `sd1:d:0:${jobId}`));
    const refusal = await h.fake.waitForCall((c) => c.method === 'POST' && c.path.startsWith(`/webhooks/${h.fake.applicationId}/${byBob.token}`));
    expect(String(refusal.body?.content)).toContain('Only the person who asked');
    expect(h.fake.messages.has(message.id)).toBe(true);
    const byAlice = send(h.fake, buttonClick(h.fake, alice, message, `sd1:d:0:${jobId}`));
    await h.fake.waitForCall((c) => c.method === 'DELETE' && c.path.includes(`/${byAlice.token}/messages/@original`));
    expect(h.fake.messages.has(message.id)).toBe(false);
  });

  it('Zoom out makes an outpaint job on the inpaint model (the engine builds canvas and mask)', async () => {
    const { message, jobId } = await imagine('a cabin --count 1');
    const z = send(h.fake, buttonClick(h.fake, alice, message, `sd1:z2:0:${jobId}`));
    await waitFinalEdit(h.fake, z.token);
    const req = queue.enqueued.at(-1)?.request;
    expect(req).toMatchObject({ kind: 'inpaint', model: 'tiny-sd15-inpaint', strength: 1, outpaint: { zoom: 2 }, maskImage: null });
  });

  it('an image attachment makes img2img, image + mask makes inpaint', async () => {
    const png = await solidPng(64, 64, 100);
    const image = h.fake.addAttachment(png, 'cat.png', 'image/png', { width: 64, height: 64 });
    const mask = h.fake.addAttachment(await solidPng(64, 64, 255), 'mask.png', 'image/png', { width: 64, height: 64 });
    const a = send(h.fake, chatInput(h.fake, alice, 'imagine', { prompt: 'make it a painting --strength 0.5', image }));
    await waitFinalEdit(h.fake, a.token);
    const r1 = queue.enqueued.at(-1)?.request;
    expect(r1).toMatchObject({ kind: 'img2img', strength: 0.5, count: 1 });
    expect(r1?.initImage?.kind === 'redis' && queue.inputs.get(r1.initImage.key)?.byteLength).toBe(png.byteLength);
    const b = send(h.fake, chatInput(h.fake, alice, 'imagine', { prompt: 'a hat', image, mask }));
    await waitFinalEdit(h.fake, b.token);
    expect(queue.enqueued.at(-1)?.request).toMatchObject({ kind: 'inpaint', model: 'tiny-sd15-inpaint' });
  });

  it('rejects non-images, oversized files and foreign hosts with ephemeral errors', async () => {
    const before = queue.enqueued.length;
    const pdf = h.fake.addAttachment(new TextEncoder().encode('%PDF-1.7 not a picture at all'), 'totally.png', 'image/png');
    const huge = { ...h.fake.addAttachment(await solidPng(8, 8, 1), 'big.png', 'image/png'), size: 50 * 1024 * 1024 };
    const foreign = { ...pdf, id: '1234567890123456789', url: 'https://evil.example.com/x.png' };
    const cases: [typeof pdf, RegExp][] = [
      [pdf, /isn't an image I can read \(got a PDF\)/],
      [huge, /is 50\.0 MiB; the limit is/],
      [foreign, /don't fetch pictures from evil\.example\.com/],
    ];
    for (const [image, expected] of cases) {
      const i = send(h.fake, chatInput(h.fake, alice, 'imagine', { prompt: 'x', image }));
      const err = await h.fake.waitForCall((c) => c.method === 'POST' && c.path === `/webhooks/${h.fake.applicationId}/${i.token}`);
      expect(String(err.body?.content)).toMatch(expected);
      expect(Number(err.body?.flags) & 64).toBe(64);
      // The public "thinking…" placeholder is removed.
      await h.fake.waitForCall((c) => c.method === 'DELETE' && c.path.includes(`/${i.token}/messages/@original`));
    }
    expect(queue.enqueued.length).toBe(before);
  });

  it('reply-with-image: replying to a picture and mentioning the bot makes img2img; a second image is the mask', async () => {
    const pic = h.fake.addAttachment(await solidPng(64, 64, 50), 'pic.png', 'image/png', { width: 64, height: 64 });
    const target = userMessage(h.fake, bob, 'look at this', { attachments: [pic] });
    const reply = userMessage(h.fake, alice, 'as a watercolor --strength 0.4', { replyTo: target, mentionBot: true });
    const created = await h.fake.waitForCall((c) => c.method === 'POST' && c.path === `/channels/${h.fake.channelId}/messages` && (c.body?.message_reference as { message_id?: string } | undefined)?.message_id === reply.id);
    expect(String(created.body?.content)).toContain('as a watercolor');
    await h.fake.waitForCall((c) => c.method === 'PATCH' && c.path.startsWith(`/channels/${h.fake.channelId}/messages/`) && c.files.length > 0 && Array.isArray(c.body?.components) && (c.body.components as unknown[]).length > 0);
    expect(queue.enqueued.at(-1)?.request).toMatchObject({ kind: 'img2img', prompt: 'as a watercolor', strength: 0.4, origin: { replyTo: reply.id } });

    const mask = h.fake.addAttachment(await solidPng(64, 64, 255), 'mask.png', 'image/png', { width: 64, height: 64 });
    const n = queue.enqueued.length;
    userMessage(h.fake, alice, 'a red door', { replyTo: target, mentionBot: true, attachments: [mask] });
    await waitUntil(() => queue.enqueued.length > n);
    expect(queue.enqueued.at(-1)?.request).toMatchObject({ kind: 'inpaint', prompt: 'a red door' });

    // With --control the reply's own picture (the newest) is the control image; the picture replied to is context.
    const edges = await solidPng(64, 64, 200);
    const m = queue.enqueued.length;
    userMessage(h.fake, alice, 'a castle --control canny', { replyTo: target, mentionBot: true, attachments: [h.fake.addAttachment(edges, 'edges.png', 'image/png', { width: 64, height: 64 })] });
    await waitUntil(() => queue.enqueued.length > m);
    const cn = queue.enqueued.at(-1)?.request;
    expect(cn).toMatchObject({ kind: 'controlnet', model: 'tiny-sd15-controlnet', controlPreprocess: 'canny', initImage: null, maskImage: null });
    expect(Buffer.from(queue.inputs.get((cn?.controlImage as { key: string }).key) ?? []).equals(Buffer.from(edges))).toBe(true);
  });

  it('Remix asks for a prompt in a modal, then remixes the message picture', async () => {
    const { message } = await imagine('a sunny beach --count 1');
    const cmd = send(h.fake, messageCommand(h.fake, alice, 'Remix', message));
    const cb = await waitCallback(h.fake, cmd.token);
    expect(cb.body?.type).toBe(9);
    const modal = cb.body?.data as { custom_id: string; components: { components: { value: string }[] }[] };
    expect(modal.components[0]?.components[0]?.value).toBe('a sunny beach');
    const submit = send(h.fake, modalSubmit(h.fake, alice, modal.custom_id, { prompt: 'a snowy beach --strength 0.6' }));
    expect((await waitCallback(h.fake, submit.token)).body?.type).toBe(5);
    await waitFinalEdit(h.fake, submit.token);
    expect(queue.enqueued.at(-1)?.request).toMatchObject({ kind: 'img2img', prompt: 'a snowy beach', strength: 0.6 });
  });

  it('admin commands: refused for members, allowed for Manage Server and listed admins; ban takes effect', async () => {
    const refused = send(h.fake, chatInput(h.fake, alice, 'sd-admin', {}, 'models'));
    const r = await waitCallback(h.fake, refused.token);
    expect(r.body?.type).toBe(4);
    expect((r.body?.data as { content: string; flags: number }).content).toContain('Only server managers');

    const ok = send(h.fake, chatInput(h.fake, manager, 'sd-admin', {}, 'models'));
    expect((await waitCallback(h.fake, ok.token)).body).toMatchObject({ type: 5, data: { flags: 64 } });
    const listing = await h.fake.waitForCall((c) => c.method === 'PATCH' && c.path.includes(`/${ok.token}/messages/@original`));
    expect(String(listing.body?.content)).toMatch(/`tiny-sd15` \(sd15\): held by `mem-1`/);

    const ban = send(h.fake, chatInput(h.fake, listedAdmin, 'sd-admin', { user: bob.id }, 'ban'));
    await h.fake.waitForCall((c) => c.method === 'PATCH' && c.path.includes(`/${ban.token}/messages/@original`));
    const banned = send(h.fake, chatInput(h.fake, bob, 'imagine', { prompt: 'a cat' }));
    expect(((await waitCallback(h.fake, banned.token)).body?.data as { content: string }).content).toContain('blocked');

    const def = send(h.fake, chatInput(h.fake, manager, 'sd-admin', { scope: 'server', steps: 9 }, 'default'));
    const defAnswer = await h.fake.waitForCall((c) => c.method === 'PATCH' && c.path.includes(`/${def.token}/messages/@original`));
    expect(String(defAnswer.body?.content)).toContain('steps `9`');
    const i = send(h.fake, chatInput(h.fake, alice, 'imagine', { prompt: 'defaults apply' }));
    await waitFinalEdit(h.fake, i.token);
    expect(queue.enqueued.at(-1)?.request.steps).toBe(9);
  });

  it("/sd-admin default model lives in the queue's default-model store; /sd-admin queue shows depths and controls go to the queue", async () => {
    const def = send(h.fake, chatInput(h.fake, manager, 'sd-admin', { scope: 'server', model: 'tiny-sd15-inpaint' }, 'default'));
    const answer = await h.fake.waitForCall((c) => c.method === 'PATCH' && c.path.includes(`/${def.token}/messages/@original`));
    expect(String(answer.body?.content)).toContain('model `tiny-sd15-inpaint`');
    expect(await queue.getDefaultModel({ kind: 'guild', id: h.fake.guildId })).toBe('tiny-sd15-inpaint');
    const i = send(h.fake, chatInput(h.fake, alice, 'imagine', { prompt: 'which model' }));
    await waitFinalEdit(h.fake, i.token);
    expect(queue.enqueued.at(-1)?.request.model).toBe('tiny-sd15-inpaint');
    // A change made by another bot process reaches this one on refresh.
    await queue.setDefaultModel({ kind: 'guild', id: h.fake.guildId }, null);
    await h.bot.core.defaultModels.refresh();
    const j = send(h.fake, chatInput(h.fake, alice, 'imagine', { prompt: 'back to base' }));
    await waitFinalEdit(h.fake, j.token);
    expect(queue.enqueued.at(-1)?.request.model).toBe('tiny-sd15');

    const q = send(h.fake, chatInput(h.fake, manager, 'sd-admin', {}, 'queue'));
    const listing = await h.fake.waitForCall((c) => c.method === 'PATCH' && c.path.includes(`/${q.token}/messages/@original`));
    expect(String(listing.body?.content)).toMatch(/Waiting: `tiny-sd15` \d+, `tiny-sd15-inpaint` \d+/);
    const pause = send(h.fake, chatInput(h.fake, manager, 'sd-admin', {}, 'pause'));
    await h.fake.waitForCall((c) => c.method === 'PATCH' && c.path.includes(`/${pause.token}/messages/@original`));
    expect(queue.controls.at(-1)).toEqual({ cmd: 'pause' });
    const resume = send(h.fake, chatInput(h.fake, manager, 'sd-admin', {}, 'resume'));
    await h.fake.waitForCall((c) => c.method === 'PATCH' && c.path.includes(`/${resume.token}/messages/@original`));
    expect(queue.controls.at(-1)).toEqual({ cmd: 'resume' });
  });
});

async function waitUntil(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
