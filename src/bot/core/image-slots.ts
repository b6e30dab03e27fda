/** Pictures found with a remix request, in the order found: the first is the image to work on, a second the inpaint mask. */
import type { ImagineInput, RemoteImage } from './validate.js';

export function imageSlots(pictures: readonly RemoteImage[]): ImagineInput['images'] {
  const [image, mask] = pictures;
  return { ...(image ? { image } : {}), ...(mask ? { mask } : {}) };
}
