/**
 * `sdbot commands generate` writes the platform command manifests in commands/ from the options table;
 * `sdbot commands register --discord [--guild ID]` registers them with Discord when they changed.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { discordCommands } from '../bot/discord/command-json.js';
import { registerDiscordCommands } from '../bot/discord/register.js';
import { slackManifest } from '../bot/slack/manifest.js';

export const DISCORD_COMMANDS_FILE = join('commands', 'discord-commands.json');

export function discordCommandsJson(): string {
  return `${JSON.stringify(discordCommands(), null, 2)}\n`;
}

export const SLACK_MANIFEST_FILE = join('commands', 'slack-manifest.json');

export function slackManifestJson(): string {
  return `${JSON.stringify(slackManifest(), null, 2)}\n`;
}

export function registerCommands(program: Command): void {
  const commands = program.command('commands').description('Chat-platform command manifests');
  commands
    .command('generate')
    .description(`write ${DISCORD_COMMANDS_FILE} and ${SLACK_MANIFEST_FILE} from the options table`)
    .action(() => {
      writeFileSync(DISCORD_COMMANDS_FILE, discordCommandsJson());
      writeFileSync(SLACK_MANIFEST_FILE, slackManifestJson());
      console.log(`wrote ${DISCORD_COMMANDS_FILE} and ${SLACK_MANIFEST_FILE}`);
    });
  commands
    .command('register')
    .description('register the commands with the platform, only when they changed')
    .option('--discord', 'register the Discord application commands (DISCORD_TOKEN, DISCORD_APPLICATION_ID)')
    .option('--guild <id>', 'register in one server (instant) instead of globally')
    .action(async (opts: { discord?: boolean; guild?: string }) => {
      if (!opts.discord) throw new Error('name a platform: --discord');
      const token = process.env.DISCORD_TOKEN;
      const applicationId = process.env.DISCORD_APPLICATION_ID;
      if (!token || !applicationId) {
        console.error('set DISCORD_TOKEN and DISCORD_APPLICATION_ID');
        process.exitCode = 1;
        return;
      }
      const result = await registerDiscordCommands({
        token, applicationId,
        ...(opts.guild ? { guildId: opts.guild } : {}),
        ...(process.env.DISCORD_API_URL ? { apiUrl: process.env.DISCORD_API_URL } : {}),
      });
      const where = opts.guild ? `server ${opts.guild}` : 'globally';
      console.log(result === 'unchanged' ? `Discord commands ${where} are up to date; nothing registered.` : `Registered the Discord commands ${where}.`);
    });
}
