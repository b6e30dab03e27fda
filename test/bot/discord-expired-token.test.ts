/**
 * A job that ends after its interaction token expired (15 min on Discord): the fake answers webhook calls with
 * Discord's 401 / 50027 "Invalid Webhook Token", and the result must still reach the channel, posted with the bot
 * token as a reply to the deferred message, mentioning the person who asked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatInput, fakeUser, send } from '../fakes/discord/payloads.js';
import { customIds, original, startHarness, waitCallback, type Harness } from './discord-harness.js';
import { MemoryQueue } from './memory-queue.js';

describe('Discord: result after the interaction token expired', () => {
  let h: Harness;
  const alice = fakeUser('alice');
  beforeAll(async () => {
    h = await startHarness({ queue: new MemoryQueue({ stepMs: 120 }) });
  });
  afterAll(async () => h.close());

  it('posts the final message in the channel as a reply to the deferred message', async () => {
    const i = send(h.fake, chatInput(h.fake, alice, 'imagine', { prompt: 'a slow queue --steps 8 --seed 5' }));
    await waitCallback(h.fake, i.token);
    // The deferred reply got at least one edit (queued or progress) while the token was good...
    await h.fake.waitForCall((c) => c.method === 'PATCH' && c.path.includes(`/${i.token}/messages/@original`));
    const deferred = original(h.fake, i.token);
    // ...then 15 minutes pass.
    h.fake.expireToken(i.token);
    const callsBefore = h.fake.callsFor(i.token).length;
    const posted = await h.fake.waitForCall((c) => c.method === 'POST' && c.path === `/channels/${h.fake.channelId}/messages`, 15_000);

    // The edit that met the 401 (a progress edit) is what switched the sink over.
    expect(h.fake.callsFor(i.token).slice(callsBefore).filter((c) => c.method === 'PATCH').length).toBeGreaterThanOrEqual(1);
    expect(posted.body?.message_reference).toMatchObject({ message_id: deferred.id });
    expect(String(posted.body?.content)).toContain(`<@${alice.id}>`);
    expect(String(posted.body?.content)).toContain('**a slow queue**');
    expect(posted.body?.allowed_mentions).toMatchObject({ users: expect.arrayContaining([alice.id]) });
    expect(posted.files).toHaveLength(1);
    const job = (h.queue as MemoryQueue).enqueued.find((e) => e.request.prompt === 'a slow queue');
    expect(customIds(posted.body?.components)).toContain(`sd1:u:0:${job?.jobId}`);
    // Nothing more is attempted on the dead token once the refusal was seen, and the final never went there.
    const afterPost = h.fake.callsFor(i.token).filter((c) => c.at > posted.at);
    expect(afterPost).toEqual([]);
    expect(h.fake.callsFor(i.token).some((c) => c.method === 'PATCH' && customIds(c.body?.components).length > 0)).toBe(false);
  });
});
