import { S_IFMT } from '../server/master/inode';

/** One name of a directory listing as readdir hands it to the kernel. */
export interface Dirent {
  name: string;
  ino: number;
  /** st_mode; its type bits become d_type */
  mode: number;
}

/** struct fuse_dirent (linux/fuse.h): u64 ino, u64 off, u32 namelen, u32 type, then the name. */
const HEADER = 24;

/**
 * The entries of `listing` from position `offset` on, packed as the kernel's fuse_dirent
 * records (each 8-byte aligned) into at most `size` bytes; each record's offset is the position
 * after it, which the kernel passes back to continue.
 */
export function packDirents(listing: Dirent[], offset: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  // DataView calls are builtins even in cold code (Buffer's writeUInt32LE and kin are JS
  // functions): a listing is often the first of its size in the mount's life.
  const view = new DataView(out.buffer, out.byteOffset, size);
  let at = 0;
  for (let i = offset; i < listing.length; i++) {
    const e = listing[i];
    // UTF-8 takes at most 3 bytes per UTF-16 unit: only near the end is the exact length needed.
    const surelyFits = at + HEADER + 3 * e.name.length <= size;
    if (!surelyFits && at + ((HEADER + Buffer.byteLength(e.name) + 7) & ~7) > size) break;
    const nameLen = out.write(e.name, at + HEADER, 'utf8');
    const len = (HEADER + nameLen + 7) & ~7;
    if (at + len > size) break; // only the padding would not fit; the name bytes are not sent
    setU64(view, at, e.ino);
    setU64(view, at + 8, i + 1);
    view.setUint32(at + 16, nameLen, true);
    view.setUint32(at + 20, (e.mode & S_IFMT) >>> 12, true);
    at += len;
  }
  return out.subarray(0, at);
}

/** A safe integer as a little-endian u64 (no BigInt per entry). */
function setU64(view: DataView, at: number, v: number): void {
  view.setUint32(at, v % 0x1_0000_0000, true);
  view.setUint32(at + 4, Math.floor(v / 0x1_0000_0000), true);
}
