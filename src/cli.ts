/**
 * `sdbot` command line: start | bot | engine | generate | tokenize | models | commands.
 * Each subcommand lives in src/cli/<name>.ts and registers itself on the program here.
 */
import { Command } from 'commander';
import { registerGenerate } from './cli/generate.js';
import { registerTokenize } from './cli/tokenize.js';

const program = new Command('sdbot').description('Self-hosted Stable Diffusion bot for Discord and Slack');

// Subcommand registrations (one line each):
registerGenerate(program);
registerTokenize(program);
(await import('./cli/commands.js')).registerCommands(program);
(await import('./cli/engine.js')).registerEngine(program);
(await import('./cli/start.js')).registerStart(program);
(await import('./cli/models.js')).registerModels(program);

await program.parseAsync(process.argv);
