/** The `/imagine` help text, generated from the options table so it never drifts from what the parser accepts. */
import { OPTIONS, type OptionSpec } from './options.js';

function valueHint(o: OptionSpec): string {
  switch (o.type) {
    case 'integer':
    case 'number':
      return `${o.min}–${o.max}`;
    case 'choice':
      return (o.choices ?? []).join(' | ');
    case 'size':
      return 'WxH';
    case 'aspect':
      return 'W:H';
    case 'crop':
      return 'TOP,LEFT';
    case 'seed':
      return 'number | random';
    case 'model':
      return o.valueOptional ? '[model]' : 'model';
    default:
      return 'text';
  }
}

/** Plain text with backticks for code (rendered by Discord, Slack and the web chat alike). */
export function helpText(): string {
  const lines = ['**/imagine** `prompt [flags]`: flags go after the prompt, e.g. `a lighthouse at dusk --ar 16:9 --seed 42 --no text, blur`', ''];
  for (const o of OPTIONS) {
    if (o.name === 'prompt') continue;
    const names = o.flags.length ? o.flags.map((f) => `\`${f}\``).join(' / ') : `\`${o.name}\` (option)`;
    const value = o.type === 'attachment' ? 'image' : valueHint(o);
    const extra = [o.defaultText ? `default: ${o.defaultText}` : '', o.families ? `${o.families.join('/').toUpperCase()} only` : '']
      .filter(Boolean).join('; ');
    lines.push(`${names} ${value === 'text' ? '' : `\`${value}\` `}— ${o.help}${extra ? ` (${extra})` : ''}`);
  }
  lines.push('', 'Reply to any picture and mention me to remix it (a second image in your reply is the inpaint mask; with `--control canny` or `--control none` your newest picture is the ControlNet control image).');
  return lines.join('\n');
}

/** True when the text asks for help rather than a picture (`/imagine help`, `--help`). */
export function isHelpRequest(text: string): boolean {
  return /^\s*(help|--help|-h|\?)\s*$/i.test(text);
}
