import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const tsxCli = createRequire(import.meta.url).resolve('tsx/cli');
const tiny = JSON.parse(readFileSync(join(repo, 'test/fixtures/models/tiny-clip-tokenizer.golden.json'), 'utf8')) as {
  cases: { text: string; eot_pad: { ids: number[]; ids_77: number[] }; bang_pad: { ids: number[]; ids_77: number[] } }[];
};
const SD15 = 'test/fixtures/models/tiny-sd15/tokenizer';
const SD2 = 'test/fixtures/models/tiny-sd2-v/tokenizer';

/** Runs `tsx src/cli.ts tokenize …` (what `npx sdbot tokenize` launches). */
function sdbot(args: string[], stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [tsxCli, 'src/cli.ts', 'tokenize', ...args], { cwd: repo });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

// Each spawn pays for loading the whole CLI; run them side by side.
describe.concurrent('sdbot tokenize', () => {
  it('prints the ids of TEXT, without special tokens', async () => {
    const c = tiny.cases[0]!;
    const r = await sdbot(['--tokenizer', SD15, c.text]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(c.eot_pad.ids);
  });

  it('reads JSON strings from stdin, one array per line; --max-length gives the padded model input', async () => {
    // Prompts with "!" included: the tiny-sd2-v folder registers its pad token "!" as an added token.
    const cases = [...tiny.cases.slice(0, 8), ...tiny.cases.filter((c) => c.text.includes('!')).slice(0, 4)];
    const input = `${cases.map((c) => JSON.stringify(c.text)).join('\n')}\n\n`;
    const r = await sdbot(['--tokenizer', SD2, '--max-length', '77'], input);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as number[]);
    expect(lines).toEqual(cases.map((c) => c.bang_pad.ids_77));
  });

  it('fails with a message on a stdin line that is not a JSON string', async () => {
    const bad = await sdbot(['--tokenizer', SD15], '"ok"\n42\n');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('line 2');
  });
});
