/**
 * What the page needs for completion hints, generated from the core's options table (so the web chat offers
 * exactly the flags and values the parser accepts) plus the models live workers hold right now.
 */
import type { BotCore } from '../core/bot-core.js';
import { ADMIN_SUBCOMMANDS } from '../core/admin.js';
import { ASPECT_SUGGESTIONS, OPTIONS } from '../core/options.js';
import { ADMIN_USAGE } from './admin-text.js';

export interface HintOption {
  name: string;
  flags: readonly string[];
  type: string;
  help: string;
  choices?: readonly string[];
  min?: number;
  max?: number;
  example?: string;
  defaultText?: string;
  families?: readonly string[];
}

export interface Hints {
  commands: { name: string; help: string }[];
  options: HintOption[];
  models: string[];
  aspects: readonly string[];
  admin: { name: string; usage: string }[];
  /** A banner over the chat (the demo model's warning). */
  notice?: string;
}

export function buildHints(core: BotCore, notice?: string): Hints {
  return {
    ...(notice ? { notice } : {}),
    commands: [
      { name: '/imagine', help: 'Make pictures: /imagine PROMPT [--flags]. Drop a picture on the box (a second one is the inpaint mask) for img2img; ◧ takes a ControlNet control image.' },
      { name: '/sd-admin', help: 'Manage models, workers, defaults and users' },
      { name: '/help', help: 'Every /imagine flag, its range and default' },
    ],
    options: OPTIONS.filter((o) => o.flags.length > 0).map((o) => ({
      name: o.name, flags: o.flags, type: o.type, help: o.help,
      ...(o.choices ? { choices: o.choices } : {}), ...(o.min !== undefined ? { min: o.min } : {}), ...(o.max !== undefined ? { max: o.max } : {}),
      ...(o.example ? { example: o.example } : {}), ...(o.defaultText ? { defaultText: o.defaultText } : {}), ...(o.families ? { families: o.families } : {}),
    })),
    models: core.catalog.knownIds(),
    aspects: ASPECT_SUGGESTIONS,
    admin: ADMIN_SUBCOMMANDS.map((s) => ({ name: s, usage: ADMIN_USAGE[s] })),
  };
}
