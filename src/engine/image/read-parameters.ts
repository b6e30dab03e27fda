/** Reads the A1111 infotext back from a PNG (text chunk) or a JPEG / WebP (EXIF UserComment). */
import sharp from 'sharp';
import { readExifUserComment } from './exif-comment.js';
import { readPngParameters } from './png-text.js';
import { sniffImage } from './sniff.js';

export async function readImageParameters(bytes: Uint8Array): Promise<string | null> {
  const sniffed = sniffImage(bytes);
  if (sniffed.kind !== 'image') return null;
  if (sniffed.format === 'png') return readPngParameters(bytes);
  try {
    const { exif } = await sharp(bytes, { limitInputPixels: false }).metadata();
    return exif ? readExifUserComment(new Uint8Array(exif.buffer, exif.byteOffset, exif.length)) : null;
  } catch {
    return null;
  }
}
