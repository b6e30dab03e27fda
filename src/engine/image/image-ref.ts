/** Resolves the `ImageRef` of a job (file path, inline base64, or a key in the Redis result store) to bytes. */
import { readFile, stat } from 'node:fs/promises';
import { BadRequestError, type ImageRef } from '../../queue/job.js';
import { DEFAULT_MAX_BYTES, describeBytes } from './limits.js';

/** Reads one key of the attachment store; null when the key is missing or has expired. */
export type RedisGetter = (key: string) => Promise<Uint8Array | null>;

/**
 * Returns the bytes an `ImageRef` points at. Files larger than `maxBytes` are refused before they are read; the
 * decoder checks the size of every source again.
 */
export async function loadImageRef(ref: ImageRef, redisGet?: RedisGetter, maxBytes = DEFAULT_MAX_BYTES): Promise<Uint8Array> {
  switch (ref.kind) {
    case 'bytes':
      return new Uint8Array(Buffer.from(ref.base64, 'base64'));
    case 'redis': {
      if (!redisGet) throw new Error(`loadImageRef: image ${ref.key} is in Redis but no getter was passed`);
      const bytes = await redisGet(ref.key);
      if (!bytes) throw new BadRequestError('The attached image has expired; please send it again');
      return bytes;
    }
    case 'file': {
      let size: number;
      try {
        const st = await stat(ref.path);
        if (!st.isFile()) throw new BadRequestError(`Not a file: ${ref.path}`);
        size = st.size;
      } catch (err) {
        if (err instanceof BadRequestError) throw err;
        throw new BadRequestError(`Can't open image file ${ref.path}`);
      }
      if (size > maxBytes) throw new BadRequestError(`That file is ${describeBytes(size)}; the limit is ${describeBytes(maxBytes)}`);
      return new Uint8Array(await readFile(ref.path));
    }
  }
}
