/**
 * The real Bolt app against the fake Slack: signed requests in (forged and stale ones refused), Web API calls out.
 * /imagine → ack → progress message edited with steps and previews → result uploaded through files.uploadV2's
 * three calls → buttons → a follow-up job; bad flags; help.
 */
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPngParameters } from '../../src/engine/image/index.js';
import { MemoryQueue } from './memory-queue.js';
import { buttonValues, imageFileIds, startSlackHarness, waitBotMessage, waitFinal, type SlackHarness } from './slack-harness.js';

describe('Slack /imagine against the fake Slack', () => {
  let h: SlackHarness;
  let queue: MemoryQueue;
  const alice = 'U0ALICE';
  const bob = 'U0BOB';
  beforeAll(async () => {
    // Steps slow enough that progress edits (150 ms apart, each uploading a preview) land between queued and final even on a busy machine.
    queue = new MemoryQueue({ stepMs: 150 });
    h = await startSlackHarness({ queue });
    h.fake.users.set(alice, { name: 'alice' });
    h.fake.users.set(bob, { name: 'bob' });
  });
  afterAll(async () => h.close());

  it('refuses forged and stale requests with 401 and queues nothing', async () => {
    const before = queue.enqueued.length;
    const control = await h.fake.sendCommand(alice, '/imagine', 'a signed cat --count 1').result;
    expect(control.status).toBe(200); // correctly signed
    const bad = await h.fake.sendCommand(alice, '/imagine', 'a forged dog', { tamper: { secret: 'not-the-secret' } }).result;
    expect(bad.status).toBe(401);
    const stale = await h.fake.sendCommand(alice, '/imagine', 'a stale dog', { tamper: { ageSeconds: 6 * 60 } }).result;
    expect(stale.status).toBe(401);
    const unsigned = await fetch(h.fake.botUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(h.fake.commandPayload(alice, '/imagine', 'unsigned dog')).toString() });
    expect(unsigned.status).toBe(401);
    // A request just inside the window still counts.
    const recent = await h.fake.sendCommand(alice, '/imagine', 'a recent cat --count 1', { tamper: { ageSeconds: 4 * 60 } }).result;
    expect(recent.status).toBe(200);
    await waitFinal(h.fake, (await waitBotMessage(h.fake, (m) => m.text.includes('a recent cat'))).ts);
    const prompts = queue.enqueued.slice(before).map((e) => e.request.prompt);
    expect(prompts).toContain('a recent cat');
    expect(prompts.some((p) => p.includes('dog'))).toBe(false);
  });

  it('acks, edits progress with previews, uploads the grid in three steps, shows buttons, and a button makes a follow-up job', async () => {
    const callsBefore = h.fake.calls.length;
    const cmd = h.fake.sendCommand(alice, '/imagine', 'a lighthouse at dusk --seed 42 --steps 6');
    const ack = await cmd.result;
    expect(ack.status).toBe(200);
    expect(ack.text).toBe('');
    const msg = await waitBotMessage(h.fake, (m) => m.text.includes('a lighthouse at dusk'));
    expect(msg.channel).toBe(h.fake.channelId);
    const final = await waitFinal(h.fake, msg.ts);
    const job = queue.enqueued.find((e) => e.request.prompt === 'a lighthouse at dusk');
    expect(job?.request).toMatchObject({ seed: '42', steps: 6, count: 4, origin: { platform: 'slack', userId: alice, guildId: h.fake.teamId, channelId: h.fake.channelId } });

    // Progress: queued first, then steps, with a preview image in at least one edit; all on one message.
    const texts = final.versions.map((v) => v.text);
    expect(texts[0]).toMatch(/Next in line|Queued|Starting/);
    expect(texts.some((t) => /step \d+\/6/.test(t))).toBe(true);
    expect(final.versions.slice(0, -1).some((v) => imageFileIds(v).length === 1)).toBe(true);
    expect(final.text).toContain('*a lighthouse at dusk*');
    expect(final.text).toContain(`<@${alice}>`);
    expect(final.text).toContain('seed `42`');

    // files.uploadV2: getUploadURLExternal → POST to upload_url → completeUploadExternal, for the result file.
    const [fileId] = imageFileIds(final);
    const calls = h.fake.calls.slice(callsBefore).map((c) => c.method);
    const getUrl = h.fake.calls.slice(callsBefore).find((c) => c.method === 'files.getUploadURLExternal' && String(c.args.filename).startsWith('sdbot-42'));
    expect(getUrl).toBeDefined();
    const complete = h.fake.calls.find((c) => c.method === 'files.completeUploadExternal' && String(c.args.files).includes(String(fileId)));
    expect(complete).toBeDefined();
    expect(calls.indexOf('files.completeUploadExternal')).toBeGreaterThan(calls.indexOf('files.getUploadURLExternal'));
    const file = h.fake.files.get(String(fileId));
    expect(file?.completed).toBe(true);
    const meta = await sharp(file?.data).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 128, 128]);
    expect(readPngParameters(file?.data ?? new Uint8Array())).toContain('Seed: 42');
    // Preview files are deleted once replaced; the result stays.
    expect(h.fake.callsOf('files.delete').length).toBeGreaterThan(0);
    expect([...h.fake.files.values()].filter((f) => f.name === 'preview.png')).toHaveLength(0);

    const values = buttonValues(final);
    expect(values).toEqual(expect.arrayContaining([`sd1:u:0:${job?.jobId}`, `sd1:v:1:${job?.jobId}`, `sd1:r:0:${job?.jobId}`, `sd1:d:0:${job?.jobId}`]));

    // V2 from bob: the follow-up is bob's img2img on cell 2 of the grid, posted as a new message in the channel.
    const click = await h.fake.clickButton(bob, final, `sd1:v:1:${job?.jobId}`).result;
    expect(click.status).toBe(200);
    const second = await waitBotMessage(h.fake, (m) => m.ts !== msg.ts && m.text.includes('a lighthouse at dusk') && m.text.includes(`<@${bob}>`));
    const secondFinal = await waitFinal(h.fake, second.ts);
    expect(secondFinal.text).toContain('img2img');
    const follow = queue.enqueued.at(-1);
    expect(follow?.request).toMatchObject({ kind: 'img2img', width: 64, height: 64, origin: { userId: bob, platform: 'slack' } });
    const input = queue.inputs.get((follow?.request.initImage as { key: string }).key);
    expect((await sharp(input).metadata()).width).toBe(64);
    expect(buttonValues(secondFinal)).toContain(`sd1:r:0:${follow?.jobId}`);
  });

  it('acknowledges before any Web API call even when Slack is slow', async () => {
    h.fake.apiDelayMs = 1500;
    try {
      const ack = await h.fake.sendCommand(alice, '/imagine', 'a slow day --count 1 --steps 1').result;
      expect(ack.status).toBe(200);
      expect(ack.ms).toBeLessThan(1000);
    } finally {
      h.fake.apiDelayMs = 0;
    }
    await waitFinal(h.fake, (await waitBotMessage(h.fake, (m) => m.text.includes('a slow day'))).ts);
  });

  it('answers bad flags in the ack, privately, and queues nothing', async () => {
    const before = queue.enqueued.length;
    const cases: [string, RegExp][] = [
      ['a cat --steps 500', /--steps` must be a whole number from 1 to 150; you gave 500/],
      ['a cat --seeed 4', /Did you mean `--seed`\?/],
      ['a cat --sampler eular', /Did you mean `euler`\?/],
      ['--seed 1', /prompt is empty/],
      ['a cat --model nope', /don't know the model `nope`/],
      ['a cat --size 500x500', /multiples of 8/],
    ];
    for (const [text, expected] of cases) {
      const ack = await h.fake.sendCommand(alice, '/imagine', text).result;
      expect(ack.status).toBe(200);
      const body = JSON.parse(ack.text) as { response_type: string; text: string };
      expect(body.response_type).toBe('ephemeral');
      expect(body.text).toMatch(/^⚠️/);
      expect(body.text).toMatch(expected);
    }
    expect(queue.enqueued.length).toBe(before);
  });

  it('shows the options table for /imagine help', async () => {
    const ack = await h.fake.sendCommand(alice, '/imagine', 'help').result;
    const body = JSON.parse(ack.text) as { response_type: string; text: string };
    expect(body.response_type).toBe('ephemeral');
    expect(body.text).toContain('*/imagine*');
    for (const flag of ['--ar', '--seed', '--no', '--model', '--steps', '--cfg', '--sampler']) expect(body.text).toContain(`\`${flag}\``);
  });

  it('an engine failure comes back as a readable message on the progress message', async () => {
    await h.fake.sendCommand(alice, '/imagine', 'explode please --count 1').result;
    const msg = await waitBotMessage(h.fake, (m) => m.text.includes('explode please'));
    const final = await waitFinal(h.fake, msg.ts);
    expect(final.text).toContain('⚠️ The job failed: the UNet ran out of memory at 2048x2048');
  });

  it('tells the user to invite the bot when it is not in the channel', async () => {
    const cmd = h.fake.sendCommand(alice, '/imagine', 'a hidden cat --count 1', { channel: 'CNOTIN1' });
    await cmd.result;
    const r = await h.fake.waitForResponse((x) => cmd.fields.response_url.endsWith(x.id));
    expect(r.body).toMatchObject({ response_type: 'ephemeral' });
    expect(String(r.body.text)).toContain('/invite @sdbot');
  });

  it('retries a result whose image Slack is still processing, and edits previews without theirs', async () => {
    h.fake.fileReadyDelayMs = 700;
    try {
      await h.fake.sendCommand(alice, '/imagine', 'a processing cat --count 1 --steps 4').result;
      const final = await waitFinal(h.fake, (await waitBotMessage(h.fake, (m) => m.text.includes('a processing cat'))).ts);
      expect(imageFileIds(final)).toHaveLength(1);
      // Progress edits went out without their (refused) preview rather than stalling.
      expect(final.versions.some((v) => /step \d\/4/.test(v.text) && imageFileIds(v).length === 0)).toBe(true);
    } finally {
      h.fake.fileReadyDelayMs = 0;
    }
  });

  it('lets only the owner or an admin delete a result', async () => {
    await h.fake.sendCommand(alice, '/imagine', 'a doomed cat --count 1 --steps 1').result;
    const msg = await waitFinal(h.fake, (await waitBotMessage(h.fake, (m) => m.text.includes('a doomed cat'))).ts);
    const del = buttonValues(msg).find((v) => v.startsWith('sd1:d:'));
    await h.fake.clickButton(bob, msg, del ?? '').result;
    await h.fake.waitForCall((c) => c.method === 'chat.postEphemeral' && c.args.user === bob && String(c.args.text).includes('Only the person'));
    expect(h.fake.messages.has(msg.ts)).toBe(true);
    const [fileId] = imageFileIds(msg);
    await h.fake.clickButton(alice, msg, del ?? '').result;
    await h.fake.waitForCall((c) => c.method === 'chat.delete' && c.args.ts === msg.ts);
    expect(h.fake.messages.has(msg.ts)).toBe(false);
    await h.fake.waitForCall((c) => c.method === 'files.delete' && c.args.file === fileId);
  });
});
