/**
 * The web chat's "CDN": uploaded pictures and the images of bot messages, in memory, served at /files/ID. Bounded:
 * the oldest files go first once the total passes the cap, so a long session cannot grow without limit (an evicted
 * picture's buttons answer "can't find the picture", as on a platform whose message was deleted).
 */
import { randomBytes } from 'node:crypto';

export interface StoredFile {
  bytes: Uint8Array;
  mime: string;
  name: string;
}

export class FileStore {
  /** Insertion order is age order: Map iteration gives the oldest first. */
  private readonly files = new Map<string, StoredFile>();
  private total = 0;

  constructor(private readonly maxTotalBytes = 256 * 1024 * 1024) {}

  put(file: StoredFile): string {
    const id = randomBytes(9).toString('base64url');
    this.files.set(id, file);
    this.total += file.bytes.byteLength;
    for (const [old, f] of this.files) {
      if (this.total <= this.maxTotalBytes || old === id) break;
      this.files.delete(old);
      this.total -= f.bytes.byteLength;
    }
    return id;
  }

  get(id: string): StoredFile | undefined {
    return this.files.get(id);
  }

  delete(id: string): void {
    const f = this.files.get(id);
    if (!f) return;
    this.files.delete(id);
    this.total -= f.bytes.byteLength;
  }

  get size(): number {
    return this.files.size;
  }
}
