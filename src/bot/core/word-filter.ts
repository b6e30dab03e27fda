/**
 * Optional prompt word list (off by default). Denied words refuse the prompt; allowed words are exceptions to the
 * denied ones (deny "gore*" but allow "gorilla"). Matching is per word, case-insensitive; a trailing * matches a
 * word prefix, and a multi-word entry matches that phrase.
 */
import { UserError } from './errors.js';

export interface WordFilterConfig {
  deny: readonly string[];
  allow?: readonly string[];
}

export class WordFilter {
  private readonly deny: RegExp[];
  private readonly allow: RegExp[];

  constructor(config?: WordFilterConfig) {
    this.deny = (config?.deny ?? []).filter((w) => w.trim()).map(toPattern);
    this.allow = (config?.allow ?? []).filter((w) => w.trim()).map(toPattern);
  }

  get enabled(): boolean {
    return this.deny.length > 0;
  }

  /** The denied words the prompt uses (after removing allowed ones). */
  findDenied(prompt: string): string[] {
    let text = prompt.toLowerCase();
    for (const a of this.allow) text = text.replace(a, ' ');
    const found = new Set<string>();
    for (const d of this.deny) for (const m of text.matchAll(d)) found.add((m[1] ?? '').trim());
    return [...found];
  }

  /** Throws a refusal that names the words, so the user knows what to change. */
  check(prompt: string): void {
    const denied = this.findDenied(prompt);
    if (denied.length > 0) {
      throw new UserError(`This server doesn't allow these words in prompts: ${denied.map((w) => `"${w}"`).join(', ')}. Please rephrase.`);
    }
  }
}

function toPattern(entry: string): RegExp {
  const e = entry.trim().toLowerCase();
  const prefix = e.endsWith('*');
  const body = (prefix ? e.slice(0, -1) : e).split(/\s+/).map(escape).join('\\s+');
  return new RegExp(`(?<![\\p{L}\\p{N}])(${body}${prefix ? '[\\p{L}\\p{N}]*' : ''})(?![\\p{L}\\p{N}])`, 'gu');
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Reads SDBOT_DENY_WORDS / SDBOT_ALLOW_WORDS (comma-separated). */
export function wordFilterFromEnv(env: NodeJS.ProcessEnv): WordFilter {
  const list = (v?: string) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return new WordFilter({ deny: list(env.SDBOT_DENY_WORDS), allow: list(env.SDBOT_ALLOW_WORDS) });
}
