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
  let at = 0;
  for (let i = offset; i < listing.length; i++) {
    const e = listing[i];
    const nameLen = Buffer.byteLength(e.name);
    const len = (HEADER + nameLen + 7) & ~7;
    if (at + len > size) break;
    writeU64(out, e.ino, at);
    writeU64(out, i + 1, at + 8);
    out.writeUInt32LE(nameLen, at + 16);
    out.writeUInt32LE((e.mode & S_IFMT) >>> 12, at + 20);
    out.write(e.name, at + HEADER);
    at += len;
  }
  return out.subarray(0, at);
}

/** A safe integer as a little-endian u64 (no BigInt per entry). */
function writeU64(out: Buffer, v: number, at: number): void {
  out.writeUInt32LE(v % 0x1_0000_0000, at);
  out.writeUInt32LE(Math.floor(v / 0x1_0000_0000), at + 4);
}
