/**
 * Slack beyond /imagine: remix by mention in a thread (files fetched with the bot token and checked), /sd-admin
 * gating (allowlist, workspace admins per users.info, everyone else refused), and Socket Mode.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryQueue, solidPng } from './memory-queue.js';
import { buttonValues, imageFileIds, startSlackHarness, waitBotMessage, waitFinal, type SlackHarness } from './slack-harness.js';

const alice = 'U0ALICE';
const mallory = 'U0MALLORY';
const owner = 'U0OWNER';
const allowed = 'U0LISTED';

describe('Slack remix by mention in a thread', () => {
  let h: SlackHarness;
  let queue: MemoryQueue;
  beforeAll(async () => {
    queue = new MemoryQueue({ stepMs: 10 });
    h = await startSlackHarness({ queue, models: [
      { id: 'tiny-sd15', family: 'sd15', role: 'base', defaultSize: { width: 64, height: 64 }, isDefault: true },
      { id: 'tiny-sd15-inpaint', family: 'sd15', role: 'inpaint', defaultSize: { width: 64, height: 64 } },
      { id: 'tiny-sd15-controlnet', family: 'sd15', role: 'controlnet', defaultSize: { width: 64, height: 64 } },
    ] });
    queue.modelList = ['tiny-sd15', 'tiny-sd15-inpaint', 'tiny-sd15-controlnet'];
    await h.bot.core.catalog.refresh();
  });
  afterAll(async () => h.close());

  it('a reply with a picture and a mention makes img2img with the reply text as prompt, in the thread', async () => {
    const parent = h.fake.storeMessage(h.fake.channelId, alice, 'look at this', []);
    const pic = h.fake.addFile(await solidPng(64, 64, 90), 'pic.png', 'image/png', { width: 64, height: 64 });
    const sent = h.fake.sendMention(alice, `<@${h.fake.botUserId}> a red door --steps 3 --strength 0.5`, { threadTs: parent.ts, files: [pic] });
    expect((await sent.result).status).toBe(200);
    const msg = await waitBotMessage(h.fake, (m) => m.text.includes('a red door'));
    expect(msg.thread_ts).toBe(parent.ts);
    const final = await waitFinal(h.fake, msg.ts);
    expect(final.text).toContain('img2img');
    const job = queue.enqueued.find((e) => e.request.prompt === 'a red door');
    expect(job?.request).toMatchObject({ kind: 'img2img', strength: 0.5, steps: 3, origin: { platform: 'slack', userId: alice, replyTo: parent.ts } });
    const input = queue.inputs.get((job?.request.initImage as { key: string }).key);
    expect(Buffer.from(input ?? []).equals(Buffer.from(pic.data))).toBe(true);
    // The file was fetched from its private URL with the bot token (the fake serves a login page otherwise).
    expect(buttonValues(final).length).toBeGreaterThan(0);
  });

  it('a second picture is the inpaint mask; a reply under our result remixes the result', async () => {
    await h.fake.sendCommand(alice, '/imagine', 'a house --count 1 --steps 1').result;
    const result = await waitFinal(h.fake, (await waitBotMessage(h.fake, (m) => m.text.includes('a house'))).ts);
    const mask = h.fake.addFile(await solidPng(64, 64, 255), 'mask.png', 'image/png', { width: 64, height: 64 });
    await h.fake.sendMention(alice, `<@${h.fake.botUserId}> a house with a red roof --steps 2`, { threadTs: result.ts, files: [mask] }).result;
    const msg = await waitBotMessage(h.fake, (m) => m.text.includes('a house with a red roof'));
    expect(msg.thread_ts).toBe(result.ts);
    const final = await waitFinal(h.fake, msg.ts);
    const job = queue.enqueued.find((e) => e.request.prompt === 'a house with a red roof');
    expect(job?.request.kind).toBe('inpaint');
    expect(job?.request.model).toBe('tiny-sd15-inpaint');
    const init = queue.inputs.get((job?.request.initImage as { key: string }).key);
    const resultFile = h.fake.files.get(imageFileIds(result)[0] ?? '');
    expect(Buffer.from(init ?? []).equals(Buffer.from(resultFile?.data ?? []))).toBe(true);
    const maskBytes = queue.inputs.get((job?.request.maskImage as { key: string }).key);
    expect(Buffer.from(maskBytes ?? []).equals(Buffer.from(mask.data))).toBe(true);
    expect(final.text).toContain('inpaint');
  });

  it('a picture sent with --control is the ControlNet control image; in a thread the reply’s own picture is', async () => {
    const inputOf = (ref: unknown) => Buffer.from(queue.inputs.get((ref as { key: string }).key) ?? []);
    const edges = h.fake.addFile(await solidPng(64, 64, 200), 'edges.png', 'image/png', { width: 64, height: 64 });
    await h.fake.sendMention(alice, `<@${h.fake.botUserId}> a castle --control canny --control-scale 0.6 --steps 2`, { files: [edges] }).result;
    const final = await waitFinal(h.fake, (await waitBotMessage(h.fake, (m) => m.text.includes('a castle'))).ts);
    expect(final.text).toContain('controlnet');
    const job = queue.enqueued.find((e) => e.request.prompt === 'a castle');
    expect(job?.request).toMatchObject({ kind: 'controlnet', model: 'tiny-sd15-controlnet', controlPreprocess: 'canny', controlScale: 0.6, initImage: null });
    expect(inputOf(job?.request.controlImage).equals(Buffer.from(edges.data))).toBe(true);

    // Under a result: the thread's picture is only context, the reply's own file is the control image.
    const shapes = h.fake.addFile(await solidPng(64, 64, 30), 'shapes.png', 'image/png', { width: 64, height: 64 });
    await h.fake.sendMention(alice, `<@${h.fake.botUserId}> a tower --control none --steps 2`, { threadTs: final.ts, files: [shapes] }).result;
    await waitBotMessage(h.fake, (m) => m.text.includes('a tower'));
    const tower = queue.enqueued.find((e) => e.request.prompt === 'a tower');
    expect(tower?.request).toMatchObject({ kind: 'controlnet', controlPreprocess: 'none', initImage: null, maskImage: null });
    expect(inputOf(tower?.request.controlImage).equals(Buffer.from(shapes.data))).toBe(true);
  });

  it('refuses files that are not pictures or too large, privately', async () => {
    const before = queue.enqueued.length;
    const fakePng = h.fake.addFile(new TextEncoder().encode('not a png at all'), 'sneaky.png', 'image/png');
    await h.fake.sendMention(alice, `<@${h.fake.botUserId}> a sneaky cat`, { files: [fakePng] }).result;
    const warn = await h.fake.waitForCall((c) => c.method === 'chat.postEphemeral' && c.args.user === alice && String(c.args.text).startsWith('⚠️'));
    expect(String(warn.args.text)).toMatch(/The image/);
    const huge = h.fake.addFile(await solidPng(64, 64, 1), 'huge.png', 'image/png', { width: 20000, height: 20000 });
    await h.fake.sendMention(alice, `<@${h.fake.botUserId}> a huge cat`, { files: [huge] }).result;
    await h.fake.waitForCall((c) => c.method === 'chat.postEphemeral' && String(c.args.text).includes('20000×20000'));
    expect(queue.enqueued.length).toBe(before);
  });

  it('a mention without any picture gets a private hint', async () => {
    await h.fake.sendMention(alice, `<@${h.fake.botUserId}> hello`).result;
    const hint = await h.fake.waitForCall((c) => c.method === 'chat.postEphemeral' && String(c.args.text).includes('mention me to remix'));
    expect(hint.args.user).toBe(alice);
  });
});

describe('Slack /sd-admin gating', () => {
  let h: SlackHarness;
  let queue: MemoryQueue;
  beforeAll(async () => {
    queue = new MemoryQueue({ stepMs: 5 });
    h = await startSlackHarness({ queue, adminUserIds: [allowed] });
    h.fake.users.set(alice, { name: 'alice' });
    h.fake.users.set(mallory, { name: 'mallory' });
    h.fake.users.set(owner, { name: 'owner', is_admin: true });
  });
  afterAll(async () => h.close());

  async function admin(user: string, text: string): Promise<string> {
    const cmd = h.fake.sendCommand(user, '/sd-admin', text);
    const ack = await cmd.result;
    expect(ack.status).toBe(200);
    const r = await h.fake.waitForResponse((x) => cmd.fields.response_url.endsWith(x.id));
    expect(r.body.response_type).toBe('ephemeral');
    return String(r.body.text);
  }

  it('refuses users who are neither listed nor workspace admins', async () => {
    expect(await admin(mallory, 'queue')).toContain('Only workspace admins');
    expect(await admin(mallory, `ban <@${alice}|alice>`)).toContain('Only workspace admins');
    expect(await admin('U0NOBODY', 'models')).toContain('Only workspace admins');
  });

  it('admits the allowlist without asking Slack, and workspace admins per users.info', async () => {
    const infoBefore = h.fake.callsOf('users.info').length;
    expect(await admin(allowed, 'queue')).toContain('`mem-1`');
    expect(h.fake.callsOf('users.info').length).toBe(infoBefore);
    expect(await admin(owner, 'models')).toContain('`tiny-sd15`');
    expect(h.fake.callsOf('users.info').at(-1)?.args.user).toBe(owner);
  });

  it('bans and unbans by mention, sets limits and channel defaults, and explains bad subcommands', async () => {
    expect(await admin(owner, `ban <@${mallory}|mallory>`)).toContain(`Banned user \`${mallory}\``);
    const ack = await h.fake.sendCommand(mallory, '/imagine', 'a cat').result;
    expect(JSON.parse(ack.text).text).toContain('an admin has blocked you');
    expect(await admin(owner, `unban <@${mallory}>`)).toContain('may make pictures again');
    expect(await admin(allowed, 'limits 3')).toContain('3 job(s)');
    expect(await admin(allowed, 'default channel steps=7 count=1')).toContain('steps `7`');
    await h.fake.sendCommand(alice, '/imagine', 'a default cat').result;
    await waitFinal(h.fake, (await waitBotMessage(h.fake, (m) => m.text.includes('a default cat'))).ts);
    expect(queue.enqueued.at(-1)?.request).toMatchObject({ steps: 7, count: 1 });
    expect(await admin(allowed, 'default workspace clear')).toContain('Cleared the server defaults');
    expect(await admin(allowed, 'qeue')).toContain('Did you mean `queue`?');
    expect(await admin(allowed, 'limits lots')).toContain('whole number');
    expect(await admin(allowed, '')).toContain('subcommands');
  });

  it('admins may delete anyone’s result', async () => {
    await h.fake.sendCommand(alice, '/imagine', 'a deletable cat --count 1').result;
    const msg = await waitFinal(h.fake, (await waitBotMessage(h.fake, (m) => m.text.includes('a deletable cat'))).ts);
    const del = buttonValues(msg).find((v) => v.startsWith('sd1:d:')) ?? '';
    await h.fake.clickButton(owner, msg, del).result;
    await h.fake.waitForCall((c) => c.method === 'chat.delete' && c.args.ts === msg.ts);
  });
});

describe('Slack Socket Mode', () => {
  let h: SlackHarness;
  let queue: MemoryQueue;
  beforeAll(async () => {
    queue = new MemoryQueue({ stepMs: 5 });
    h = await startSlackHarness({ queue, socketMode: true });
    await h.fake.socketConnected();
  });
  afterAll(async () => h.close());

  it('connects with the app token and handles commands and clicks as envelopes', async () => {
    expect(h.bot.mode).toBe('socket');
    expect(h.fake.callsOf('apps.connections.open')[0]?.token).toBe(h.fake.appToken);
    const help = await h.fake.sendEnvelope('slash_commands', h.fake.commandPayload(alice, '/imagine', 'help'));
    expect(JSON.stringify(help.payload)).toContain('--seed');
    const bad = await h.fake.sendEnvelope('slash_commands', h.fake.commandPayload(alice, '/imagine', 'a cat --steps 0'));
    expect((bad.payload as { text: string }).text).toContain('--steps');
    const ok = await h.fake.sendEnvelope('slash_commands', h.fake.commandPayload(alice, '/imagine', 'a socket cat --count 1 --steps 2'));
    expect(ok.ms).toBeLessThan(1000);
    const final = await waitFinal(h.fake, (await waitBotMessage(h.fake, (m) => m.text.includes('a socket cat'))).ts);
    const reroll = buttonValues(final).find((v) => v.startsWith('sd1:r:')) ?? '';
    await h.fake.sendEnvelope('interactive', h.fake.buttonPayload(alice, final, reroll));
    await waitFinal(h.fake, (await waitBotMessage(h.fake, (m) => m.ts !== final.ts && m.text.includes('a socket cat'))).ts);
    const jobs = queue.enqueued.filter((e) => e.request.prompt === 'a socket cat');
    expect(jobs).toHaveLength(2);
    expect(jobs[1]?.request.seed).not.toBe(jobs[0]?.request.seed);
  });
});
