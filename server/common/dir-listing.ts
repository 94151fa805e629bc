import { S_IFMT, S_IFREG, type Attr } from '../master/inode';
import type { DirEntry } from '../master/namespace';
import { FsError } from './fs-error';

/**
 * A page of a directory listing as ReadDirResponse.entries carries it, laid out in columns so
 * that both ends handle it with a few bulk copies instead of a dozen calls per entry (a
 * listing is often the first of its size in a process's life, run as cold JavaScript: 1,000
 * entries took 2.0 ms to encode and 3.0 ms to decode field by field, 0.9 and 2.4 ms this way
 * with an Attr object built per entry, which ListingPage leaves until one is asked for):
 *
 *   u32 MAGIC, u32 n,
 *   f64[n] ino, f64[n] size, f64[n] atime_ms, f64[n] mtime_ms, f64[n] ctime_ms,
 *   u32[n] mode, u32[n] uid, u32[n] gid, u32[n] nlink, u32[n] replication, u32[n] rdev,
 *   u32[n] flags (bit 0: has extended attributes),
 *   the names in UTF-8, each followed by a NUL (which no name contains).
 *
 * Little-endian throughout. Inode numbers and sizes are safe integers (below 2^53), which a
 * double holds exactly. Both ends read and write the columns where they lie, through a
 * DataView (a page need not be aligned for typed arrays over it): on this project's virtual
 * machines each fresh page of memory costs about 15 µs to touch, so a copy of a 5,000-entry
 * page's columns into typed arrays cost 1.3 ms at each end.
 */
/** The most entries one page carries (a master asked for more sends this many). */
export const MAX_LISTING_PAGE = 10_000;

const MAGIC = 0x324c4643; // 'CFL2'
// encodeListing writes the columns through typed arrays, in the host's byte order.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('directory listing pages are little-endian: this host is not');
const HEADER = 8;
const F64_COLUMNS = 5;
const U32_COLUMNS = 7;
const HAS_XATTRS = 1;
const FIXED = 8 * F64_COLUMNS + 4 * U32_COLUMNS;

/** Where the columns of a page of `n` entries lie in `view`, the first at byte `at`. */
class Columns {
  /** where the u32 columns start */
  readonly uAt: number;

  constructor(
    readonly view: DataView,
    private readonly n: number,
    /** where the f64 columns start */
    readonly at: number,
  ) {
    this.uAt = at + 8 * F64_COLUMNS * n;
  }

  /** Column `c` of the f64 columns (ino, size, atime, mtime, ctime), entry `i`. */
  f(c: number, i: number): number {
    return this.view.getFloat64(this.at + 8 * (c * this.n + i), true);
  }

  setF(c: number, i: number, v: number): void {
    this.view.setFloat64(this.at + 8 * (c * this.n + i), v, true);
  }

  /** Column `c` of the u32 columns (mode, uid, gid, nlink, replication, rdev, flags), entry `i`. */
  u(c: number, i: number): number {
    return this.view.getUint32(this.uAt + 4 * (c * this.n + i), true);
  }

  setU(c: number, i: number, v: number): void {
    this.view.setUint32(this.uAt + 4 * (c * this.n + i), v, true);
  }

  /** Fresh columns for `n` entries (joined or filtered pages). */
  static alloc(n: number): Columns {
    return new Columns(new DataView(new ArrayBuffer(FIXED * n)), n, 0);
  }
}

/**
 * The page of `entries`, [name, attributes] each. An Inode has an Attr's fields and serves as
 * is; a file's `replication` 0 stands for `defaultReplication`, as in attrOf.
 */
export function encodeListing(entries: ReadonlyArray<readonly [string, Attr]>, defaultReplication = 0): Buffer {
  const n = entries.length;
  // Collected and joined once: a string grown by += per name cost a cold 5,000-entry page 3 ms more.
  const nameList = new Array<string>(n);
  for (let i = 0; i < n; i++) nameList[i] = entries[i][0];
  const names = n > 0 ? nameList.join('\0') + '\0' : '';
  const namesAt = HEADER + FIXED * n;
  // A buffer of its own, so the columns are aligned for typed arrays: an element store is far
  // cheaper than a DataView call in cold code (a fresh 5,000-entry page: 6.3 -> 2.5 ms).
  const bytes = new ArrayBuffer(namesAt + Buffer.byteLength(names));
  const header = new Uint32Array(bytes, 0, 2);
  header[0] = MAGIC;
  header[1] = n;
  const f = new Float64Array(bytes, HEADER, F64_COLUMNS * n);
  const u = new Uint32Array(bytes, HEADER + 8 * F64_COLUMNS * n, U32_COLUMNS * n);
  for (let i = 0; i < n; i++) {
    const a = entries[i][1];
    f[i] = a.ino;
    f[n + i] = a.size;
    f[2 * n + i] = a.atimeMs;
    f[3 * n + i] = a.mtimeMs;
    f[4 * n + i] = a.ctimeMs;
    u[i] = a.mode;
    u[n + i] = a.uid;
    u[2 * n + i] = a.gid;
    u[3 * n + i] = a.nlink;
    u[4 * n + i] = (a.mode & S_IFMT) === S_IFREG ? a.replication || defaultReplication : 0;
    u[5 * n + i] = a.rdev;
    u[6 * n + i] = a.hasXattrs ? HAS_XATTRS : 0;
  }
  const out = Buffer.from(bytes);
  out.write(names, namesAt, 'utf8');
  return out;
}

/** A page's bytes as the mount's binding packs a readdir reply from them (mount/native/dirents.c). */
export interface PageLayout {
  /** the names in UTF-8, each followed by a NUL */
  names: Buffer;
  /** the bytes holding the columns */
  columns: Buffer;
  /** where in `columns` the inode numbers (f64) and the modes (u32) start */
  inoAt: number;
  modeAt: number;
}

/**
 * A decoded page: the names at once, each entry's attributes read from the page's columns
 * when asked for (an Attr object each for 1,000 entries cost 1.5–2 ms in cold code, and a
 * listing's reader often wants only names, or the attributes of a few).
 */
export class ListingPage {
  constructor(
    readonly names: readonly string[],
    /** laid out as encoded (decodeListing checked that they fit) */
    private readonly cols: Columns,
    /** the names as encoded, when the page is one as received (others encode theirs when asked) */
    private namesBytes?: Buffer,
  ) {}

  layout(): PageLayout {
    const { view, at, uAt } = this.cols;
    this.namesBytes ??= Buffer.from(this.names.length > 0 ? this.names.join('\0') + '\0' : '', 'utf8');
    return { names: this.namesBytes, columns: Buffer.from(view.buffer, view.byteOffset, view.byteLength), inoAt: at, modeAt: uAt };
  }

  /** Pages of one listing as one. */
  static join(pages: readonly ListingPage[]): ListingPage {
    if (pages.length === 1) return pages[0];
    const names = pages.flatMap((p) => p.names);
    const cols = Columns.alloc(names.length);
    let at = 0;
    for (const p of pages) {
      for (let i = 0; i < p.length; i++) copyEntry(p.cols, i, cols, at + i);
      at += p.length;
    }
    return new ListingPage(names, cols);
  }

  get length(): number {
    return this.names.length;
  }

  name(i: number): string {
    return this.names[i];
  }

  ino(i: number): number {
    return this.cols.f(0, i);
  }

  mode(i: number): number {
    return this.cols.u(0, i);
  }

  attr(i: number): Attr {
    const c = this.cols;
    return { // in attrOf's field order: one object shape for every Attr
      ino: c.f(0, i),
      mode: c.u(0, i),
      uid: c.u(1, i),
      gid: c.u(2, i),
      nlink: c.u(3, i),
      size: c.f(1, i),
      atimeMs: c.f(2, i),
      mtimeMs: c.f(3, i),
      ctimeMs: c.f(4, i),
      replication: c.u(4, i),
      rdev: c.u(5, i),
      hasXattrs: (c.u(6, i) & HAS_XATTRS) !== 0,
    };
  }

  entries(): DirEntry[] {
    return this.names.map((name, i) => ({ name, attr: this.attr(i) }));
  }

  /** The page without the entries `drop` names. */
  without(drop: (name: string) => boolean): ListingPage {
    const keep: number[] = [];
    this.names.forEach((name, i) => {
      if (!drop(name)) keep.push(i);
    });
    if (keep.length === this.length) return this;
    const cols = Columns.alloc(keep.length);
    keep.forEach((i, j) => copyEntry(this.cols, i, cols, j));
    return new ListingPage(keep.map((i) => this.names[i]), cols);
  }
}

function copyEntry(from: Columns, i: number, to: Columns, j: number): void {
  for (let c = 0; c < F64_COLUMNS; c++) to.setF(c, j, from.f(c, i));
  for (let c = 0; c < U32_COLUMNS; c++) to.setU(c, j, from.u(c, i));
}

/**
 * A page as encoded, read where it lies (the page keeps `bytes` alive); one cut short, overrun
 * or not a page is EIO (never a partial listing).
 */
export function decodeListing(bytes: Uint8Array): ListingPage {
  if (bytes.byteLength === 0) return new ListingPage([], Columns.alloc(0));
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < HEADER || buf.readUInt32LE(0) !== MAGIC) throw malformed('it is not a listing page');
  const n = buf.readUInt32LE(4);
  const namesAt = HEADER + FIXED * n;
  if (namesAt > buf.length) throw malformed(`its ${n} entries do not fit in ${buf.length} bytes`);
  const names = buf.toString('utf8', namesAt).split('\0');
  // Every name ends with a NUL, so the split leaves an empty string last.
  if (names.length !== n + 1 || names[n] !== '') throw malformed(`it has ${names.length - 1} names for ${n} entries`);
  names.pop();
  return new ListingPage(names, new Columns(new DataView(buf.buffer, buf.byteOffset, namesAt), n, HEADER), buf.subarray(namesAt));
}

function malformed(why: string): FsError {
  return new FsError('EIO', `malformed directory listing: ${why}`);
}
