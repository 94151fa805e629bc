import { rawLength, writeRawName } from '../server/common/raw-names';
import { S_IFDIR, S_IFMT } from '../server/master/inode';

/** A directory listing as readdir hands it to the kernel: a ListingPage is one. */
export interface Dirents {
  readonly length: number;
  name(i: number): string;
  ino(i: number): number;
  /** st_mode; its type bits become d_type */
  mode(i: number): number;
}

/** `.` and `..` (the directory `ino` and its parent), then `entries`. */
export class WithDots implements Dirents {
  constructor(
    private readonly ino_: number,
    private readonly parent: number,
    private readonly entries: Dirents,
  ) {}

  get length(): number {
    return this.entries.length + 2;
  }

  name(i: number): string {
    return i === 0 ? '.' : i === 1 ? '..' : this.entries.name(i - 2);
  }

  ino(i: number): number {
    return i === 0 ? this.ino_ : i === 1 ? this.parent : this.entries.ino(i - 2);
  }

  mode(i: number): number {
    return i < 2 ? S_IFDIR : this.entries.mode(i - 2);
  }
}

/** struct fuse_dirent (linux/fuse.h): u64 ino, u64 off, u32 namelen, u32 type, then the name. */
const HEADER = 24;

/**
 * Where replies are packed. The kernel offers up to 1 MiB per readdir (max_pages), most of
 * which a listing does not use: a fresh zeroed buffer of that size per call (`rm -rf` of a tree
 * makes thousands of calls) cost about 0.8 ms each and most of the mount's garbage collection.
 */
let scratch = Buffer.alloc(0);

/**
 * The entries of `listing` from position `offset` on, packed as the kernel's fuse_dirent
 * records (each 8-byte aligned) into at most `size` bytes; each record's offset is the position
 * after it, which the kernel passes back to continue. The bytes are valid until the next call
 * (reply with them at once): not copied out, as a fresh copy of a 5,000-entry reply cost 0.6 ms.
 */
export function packDirents(listing: Dirents, offset: number, size: number): Buffer {
  if (scratch.length < size) scratch = Buffer.allocUnsafe(size);
  const out = scratch;
  // DataView calls are builtins even in cold code (Buffer's writeUInt32LE and kin are JS
  // functions): a listing is often the first of its size in the mount's life.
  const view = new DataView(out.buffer, out.byteOffset, size);
  let at = 0;
  for (let i = offset; i < listing.length; i++) {
    const name = listing.name(i);
    // The name must fit whole (write() would cut it): its bytes are at most 3 per UTF-16 unit,
    // so only near the end is their exact number needed.
    const room = size - at - HEADER;
    if (3 * name.length > room && rawLength(name) > room) break;
    const nameLen = writeRawName(out, name, at + HEADER);
    const len = (HEADER + nameLen + 7) & ~7;
    if (at + len > size) break; // its padding does not fit: the record is left out
    setU64(view, at, listing.ino(i));
    setU64(view, at + 8, i + 1);
    view.setUint32(at + 16, nameLen, true);
    view.setUint32(at + 20, (listing.mode(i) & S_IFMT) >>> 12, true);
    // Padding: nothing of an earlier reply (a loop: Buffer.fill per entry doubled a cold 5,000-entry pack).
    for (let k = at + HEADER + nameLen; k < at + len; k++) out[k] = 0;
    at += len;
  }
  return out.subarray(0, at);
}

/** A safe integer as a little-endian u64 (no BigInt per entry). */
function setU64(view: DataView, at: number, v: number): void {
  view.setUint32(at, v % 0x1_0000_0000, true);
  view.setUint32(at + 4, Math.floor(v / 0x1_0000_0000), true);
}
