/**
 * The infotext inside JPEG and WebP files, stored as AUTOMATIC1111 stores it there (piexif): EXIF UserComment with the
 * "UNICODE\0" prefix and UTF-16BE text, in a big-endian TIFF structure. libvips can only write that tag as ASCII,
 * so the EXIF block is built here and spliced into the file.
 */

const UNICODE_PREFIX = 'UNICODE\0';
const TAG_EXIF_IFD = 0x8769;
const TAG_USER_COMMENT = 0x9286;
const TYPE_LONG = 4;
const TYPE_UNDEFINED = 7;

/** A TIFF-structured EXIF block (no "Exif\0\0" header) whose Exif IFD holds `text` as UserComment. */
export function exifUserComment(text: string): Uint8Array {
  const value = new Uint8Array(8 + text.length * 2);
  const v = new DataView(value.buffer);
  for (let i = 0; i < 8; i++) value[i] = UNICODE_PREFIX.charCodeAt(i);
  for (let i = 0; i < text.length; i++) v.setUint16(8 + 2 * i, text.charCodeAt(i)); // UTF-16 code units, big-endian
  // Layout: header (8) | IFD0: 1 entry (2 + 12 + 4) | Exif IFD: 1 entry (2 + 12 + 4) | UserComment value
  const ifd0 = 8;
  const exifIfd = ifd0 + 18;
  const valueAt = exifIfd + 18;
  const out = new Uint8Array(valueAt + value.length);
  const d = new DataView(out.buffer);
  out.set([0x4d, 0x4d, 0x00, 0x2a], 0);
  d.setUint32(4, ifd0);
  d.setUint16(ifd0, 1);
  d.setUint16(ifd0 + 2, TAG_EXIF_IFD);
  d.setUint16(ifd0 + 4, TYPE_LONG);
  d.setUint32(ifd0 + 6, 1);
  d.setUint32(ifd0 + 10, exifIfd);
  d.setUint32(ifd0 + 14, 0);
  d.setUint16(exifIfd, 1);
  d.setUint16(exifIfd + 2, TAG_USER_COMMENT);
  d.setUint16(exifIfd + 4, TYPE_UNDEFINED);
  d.setUint32(exifIfd + 6, value.length);
  d.setUint32(exifIfd + 10, valueAt);
  d.setUint32(exifIfd + 14, 0);
  out.set(value, valueAt);
  return out;
}

function findTag(d: DataView, ifdOffset: number, tag: number, le: boolean): { count: number; offset: number } | null {
  if (ifdOffset + 2 > d.byteLength) return null;
  const n = d.getUint16(ifdOffset, le);
  for (let i = 0; i < n; i++) {
    const e = ifdOffset + 2 + 12 * i;
    if (e + 12 > d.byteLength) return null;
    if (d.getUint16(e, le) !== tag) continue;
    const count = d.getUint32(e + 4, le);
    // Values of 4 bytes or less sit in the entry itself.
    return { count, offset: count <= 4 ? e + 8 : d.getUint32(e + 8, le) };
  }
  return null;
}

/** The UserComment text of an EXIF block (with or without the "Exif\0\0" header), or null. */
export function readExifUserComment(exif: Uint8Array): string | null {
  let b = exif;
  if (b.length >= 6 && String.fromCharCode(...b.subarray(0, 6)) === 'Exif\0\0') b = b.subarray(6);
  if (b.length < 8) return null;
  const le = b[0] === 0x49;
  if (!le && b[0] !== 0x4d) return null;
  const d = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const exifPtr = findTag(d, d.getUint32(4, le), TAG_EXIF_IFD, le);
  if (!exifPtr) return null;
  const comment = findTag(d, d.getUint32(exifPtr.offset, le), TAG_USER_COMMENT, le);
  if (!comment || comment.offset + comment.count > b.length || comment.count < 8) return null;
  const raw = b.subarray(comment.offset, comment.offset + comment.count);
  const prefix = String.fromCharCode(...raw.subarray(0, 8));
  const body = raw.subarray(8);
  if (prefix === UNICODE_PREFIX) {
    // piexif writes UTF-16BE; other writers use the TIFF byte order. A BOM, if any, settles it.
    const bomLe = body[0] === 0xff && body[1] === 0xfe;
    const bomBe = body[0] === 0xfe && body[1] === 0xff;
    const useLe = bomLe || (!bomBe && le && !looksBigEndianUtf16(body));
    return new TextDecoder(useLe ? 'utf-16le' : 'utf-16be').decode(bomLe || bomBe ? body.subarray(2) : body).replace(/\0+$/, '');
  }
  return new TextDecoder().decode(body).replace(/\0+$/, '');
}

/** ASCII-range UTF-16BE text has its zero bytes first. */
function looksBigEndianUtf16(body: Uint8Array): boolean {
  return body.length >= 2 && body[0] === 0 && body[1] !== 0;
}

/** Splices an EXIF block into a JPEG as an APP1 segment right after SOI; too-large blocks are left out. */
export function insertJpegExif(jpeg: Uint8Array, tiff: Uint8Array): Uint8Array {
  const payloadLength = 2 + 6 + tiff.length;
  if (payloadLength > 0xffff || jpeg[0] !== 0xff || jpeg[1] !== 0xd8) return jpeg;
  const out = new Uint8Array(jpeg.length + 2 + payloadLength);
  out.set(jpeg.subarray(0, 2), 0);
  out.set([0xff, 0xe1, payloadLength >> 8, payloadLength & 0xff], 2);
  out.set([0x45, 0x78, 0x69, 0x66, 0, 0], 6);
  out.set(tiff, 12);
  out.set(jpeg.subarray(2), 12 + tiff.length);
  return out;
}

function riffChunk(type: string, data: Uint8Array): Uint8Array {
  const padded = data.length + (data.length & 1);
  const out = new Uint8Array(8 + padded);
  for (let i = 0; i < 4; i++) out[i] = type.charCodeAt(i);
  new DataView(out.buffer).setUint32(4, data.length, true);
  out.set(data, 8);
  return out;
}

/**
 * Adds an EXIF chunk to a simple (VP8 / VP8L) or extended (VP8X) WebP, converting a simple one to the extended
 * layout the WebP container spec requires for metadata.
 */
export function insertWebpExif(webp: Uint8Array, width: number, height: number, tiff: Uint8Array): Uint8Array {
  const tag = (at: number) => String.fromCharCode(...webp.subarray(at, at + 4));
  if (webp.length < 20 || tag(0) !== 'RIFF' || tag(8) !== 'WEBP') return webp;
  let body = webp.subarray(12);
  if (tag(12) === 'VP8X') {
    body = body.slice();
    body[8] = (body[8] as number) | 0x08; // EXIF flag
  } else {
    const vp8x = new Uint8Array(10);
    vp8x[0] = 0x08;
    for (let i = 0; i < 3; i++) {
      vp8x[4 + i] = ((width - 1) >> (8 * i)) & 0xff;
      vp8x[7 + i] = ((height - 1) >> (8 * i)) & 0xff;
    }
    const header = riffChunk('VP8X', vp8x);
    const merged = new Uint8Array(header.length + body.length);
    merged.set(header, 0);
    merged.set(body, header.length);
    body = merged;
  }
  const exif = riffChunk('EXIF', tiff);
  const out = new Uint8Array(12 + body.length + exif.length);
  out.set([0x52, 0x49, 0x46, 0x46], 0);
  new DataView(out.buffer).setUint32(4, 4 + body.length + exif.length, true);
  out.set([0x57, 0x45, 0x42, 0x50], 8);
  out.set(body, 12);
  out.set(exif, 12 + body.length);
  return out;
}
