import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discordCommands } from '../../src/bot/discord/command-json.js';
import { registerDiscordCommands } from '../../src/bot/discord/register.js';
import { OPTIONS } from '../../src/bot/core/options.js';
import { DISCORD_COMMANDS_FILE, discordCommandsJson } from '../../src/cli/commands.js';
import { FakeDiscord } from '../fakes/discord/server.js';

type Opt = { name: string; description?: string; required?: boolean; options?: Opt[]; choices?: unknown[] };

describe('Discord command JSON', () => {
  it('follows Discord limits and mirrors the options table', () => {
    const [imagine] = discordCommands() as unknown as Opt[];
    const opts = imagine?.options ?? [];
    expect(opts.length).toBeLessThanOrEqual(25);
    expect(opts.map((o) => o.name)).toEqual(OPTIONS.filter((o) => o.slash !== false).map((o) => o.name));
    const firstOptional = opts.findIndex((o) => !o.required);
    expect(opts.slice(firstOptional).every((o) => !o.required)).toBe(true);
    const walk = (o: Opt): void => {
      expect(o.name).toMatch(/^[-_a-z0-9]{1,32}$/);
      expect((o.description ?? '').length).toBeLessThanOrEqual(100);
      expect((o.choices ?? []).length).toBeLessThanOrEqual(25);
      o.options?.forEach(walk);
    };
    opts.forEach(walk);
  });

  it('is committed up to date in commands/ (run `sdbot commands generate` after changing the table)', () => {
    expect(readFileSync(DISCORD_COMMANDS_FILE, 'utf8')).toBe(discordCommandsJson());
  });
});

describe('sdbot commands register --discord', () => {
  let fake: FakeDiscord;
  beforeAll(async () => {
    fake = await FakeDiscord.start();
  });
  afterAll(async () => fake.close());

  it('registers once, then only when the commands change', async () => {
    const opts = { token: 't', applicationId: fake.applicationId, guildId: fake.guildId, apiUrl: fake.apiUrl };
    expect(await registerDiscordCommands(opts)).toBe('registered');
    expect(await registerDiscordCommands(opts)).toBe('unchanged');
    const puts = () => fake.calls.filter((c) => c.method === 'PUT').length;
    expect(puts()).toBe(1);
    const changed = discordCommands().map((c) => (c.name === 'imagine' ? { ...c, description: 'Draw!' } : c));
    expect(await registerDiscordCommands({ ...opts, commands: changed })).toBe('registered');
    expect(puts()).toBe(2);
    expect(fake.commands.get(fake.guildId)?.find((c) => c.name === 'imagine')?.description).toBe('Draw!');
  });
});
