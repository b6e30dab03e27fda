/**
 * Pictures that arrive without a named slot (a remix message's files, a thread's pictures, the web chat's uploads),
 * in the order found: the picture replied to first, then the message's own. Normally the first is the image to
 * work on and a second the inpaint mask. A prompt asking for ControlNet (`--control`, `--control-scale`) makes the
 * newest picture the control image instead: a ControlNet job starts from noise and takes that one picture, and the
 * newest is the one the person just gave (a thread's earlier picture is only what they answered).
 */
import { splitFlags } from './flags.js';
import type { ImagineInput, RemoteImage } from './validate.js';

export function imageSlots(pictures: readonly RemoteImage[], text = ''): ImagineInput['images'] {
  if (asksForControlNet(text)) {
    const control = pictures.at(-1);
    return control ? { control } : {};
  }
  const [image, mask] = pictures;
  return { ...(image ? { image } : {}), ...(mask ? { mask } : {}) };
}

/** Whether the text carries a ControlNet flag. Bad flags count as none: `prepare` reports them on the same text. */
function asksForControlNet(text: string): boolean {
  try {
    const { values } = splitFlags(text);
    return values.has('control') || values.has('control_scale') || values.has('control_mode');
  } catch {
    return false;
  }
}
