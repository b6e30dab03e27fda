/**
 * `sdbot tokenize --tokenizer DIR [--max-length N] [TEXT]`: CLIP token ids of a prompt as a JSON array. Without
 * --max-length the ids carry no special tokens; with it they are the text encoder's input (BOS, the first N−2 ids,
 * EOS, padded to N with the folder's pad token). Without TEXT, reads JSON strings one a line from stdin and prints
 * one array a line.
 */
import { createInterface } from 'node:readline';
import { Command, InvalidArgumentError } from 'commander';
import { ClipTokenizer } from '../engine/text/clip-tokenizer.js';

function maxLengthArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 2) throw new InvalidArgumentError('expected a whole number of at least 2');
  return n;
}

interface TokenizeOptions {
  tokenizer: string;
  maxLength?: number;
}

function idsFor(tokenizer: ClipTokenizer, text: string, maxLength: number | undefined): number[] {
  return maxLength === undefined ? tokenizer.encode(text) : tokenizer.encodeForModel(text, maxLength).ids;
}

async function tokenizeStdin(tokenizer: ClipTokenizer, maxLength: number | undefined): Promise<void> {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    if (line.trim() === '') continue;
    let text: unknown;
    try {
      text = JSON.parse(line);
    } catch {
      text = undefined;
    }
    if (typeof text !== 'string') throw new Error(`stdin line ${lineNo}: expected a JSON-encoded string`);
    process.stdout.write(`${JSON.stringify(idsFor(tokenizer, text, maxLength))}\n`);
  }
}

export function registerTokenize(program: Command): void {
  program
    .command('tokenize')
    .description('print the CLIP token ids of a prompt (or of JSON strings read one a line from stdin)')
    .requiredOption('--tokenizer <dir>', 'tokenizer folder (vocab.json, merges.txt, tokenizer_config.json, ...)')
    .option('--max-length <n>', 'model input: BOS + first n-2 ids + EOS, padded to n', maxLengthArg)
    .argument('[text]', 'prompt; when omitted, JSON strings are read from stdin, one a line')
    .action(async (text: string | undefined, opts: TokenizeOptions, command: Command) => {
      try {
        const tokenizer = await ClipTokenizer.fromFolder(opts.tokenizer);
        if (text !== undefined) process.stdout.write(`${JSON.stringify(idsFor(tokenizer, text, opts.maxLength))}\n`);
        else await tokenizeStdin(tokenizer, opts.maxLength);
      } catch (err) {
        command.error(`error: ${err instanceof Error ? err.message : String(err)}`, { exitCode: 1 });
      }
    });
}
