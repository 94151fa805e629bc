import { S_IFMT, S_IFREG, type Attr } from '../master/inode';
import type { DirEntry } from '../master/namespace';
import { FsError } from './fs-error';


/**
 * A page of a directory listing as ReadDirResponse.entries carries it, laid out in columns so
 * that both ends handle it with a few bulk copies instead of a dozen calls per entry (a
 * listing is often the first of its size in a process's life, run as cold JavaScript: 1,000
 * entries took 2.5–4 ms to decode field by field, 1–1.5 ms this way):
 *
 *   u32 MAGIC, u32 n,
 *   f64[n] ino, f64[n] size, f64[n] atime_ms, f64[n] mtime_ms, f64[n] ctime_ms,
 *   u32[n] mode, u32[n] uid, u32[n] gid, u32[n] nlink, u32[n] replication, u32[n] rdev,
 *   the names in UTF-8, each followed by a NUL (which no name contains).
 *
 * Little-endian throughout. Inode numbers and sizes are safe integers (below 2^53), which a
 * double holds exactly.
 */
const MAGIC = 0x314c4643; // 'CFL1'
const HEADER = 8;
const F64_COLUMNS = 5;
const U32_COLUMNS = 6;
const FIXED = 8 * F64_COLUMNS + 4 * U32_COLUMNS;

// Typed arrays use the host's byte order; the columns are copied in and out of them as is.
if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) throw new Error('directory listings need a little-endian host');

/**
 * The page of `entries`, [name, attributes] each. An Inode has an Attr's fields and serves as
 * is; a file's `replication` 0 stands for `defaultReplication`, as in attrOf.
 */
export function encodeListing(entries: ReadonlyArray<readonly [string, Attr]>, defaultReplication = 0): Buffer {
  const n = entries.length;
  const f = new Float64Array(F64_COLUMNS * n);
  const u = new Uint32Array(U32_COLUMNS * n);
  let names = '';
  for (let i = 0; i < n; i++) {
    const [name, a] = entries[i];
    names += name + '\0';
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
  }
  const namesAt = HEADER + FIXED * n;
  const out = Buffer.allocUnsafe(namesAt + Buffer.byteLength(names));
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt32LE(n, 4);
  out.set(new Uint8Array(f.buffer), HEADER);
  out.set(new Uint8Array(u.buffer), HEADER + 8 * F64_COLUMNS * n);
  out.write(names, namesAt, 'utf8');
  return out;
}

/** The entries of an encoded page; a page cut short, overrun or not a page is EIO (never a partial listing). */
export function decodeListing(bytes: Uint8Array): DirEntry[] {
  if (bytes.byteLength === 0) return [];
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < HEADER || buf.readUInt32LE(0) !== MAGIC) throw malformed('it is not a listing page');
  const n = buf.readUInt32LE(4);
  const namesAt = HEADER + FIXED * n;
  if (namesAt > buf.length) throw malformed(`its ${n} entries do not fit in ${buf.length} bytes`);
  // Copies, as the page need not be aligned for typed arrays over it.
  const f = new Float64Array(F64_COLUMNS * n);
  new Uint8Array(f.buffer).set(buf.subarray(HEADER, HEADER + 8 * F64_COLUMNS * n));
  const u = new Uint32Array(U32_COLUMNS * n);
  new Uint8Array(u.buffer).set(buf.subarray(HEADER + 8 * F64_COLUMNS * n, namesAt));
  const names = buf.toString('utf8', namesAt).split('\0');
  if (names.length !== n + 1 || names[n] !== '') throw malformed(`it has ${names.length - 1} names for ${n} entries`);
  const entries = new Array<DirEntry>(n);
  for (let i = 0; i < n; i++) {
    entries[i] = {
      name: names[i],
      attr: { // in attrOf's field order: one object shape for every Attr
        ino: f[i],
        mode: u[i],
        uid: u[n + i],
        gid: u[2 * n + i],
        nlink: u[3 * n + i],
        size: f[n + i],
        atimeMs: f[2 * n + i],
        mtimeMs: f[3 * n + i],
        ctimeMs: f[4 * n + i],
        replication: u[4 * n + i],
        rdev: u[5 * n + i],
      },
    };
  }
  return entries;
}

function malformed(why: string): FsError {
  return new FsError('EIO', `malformed directory listing: ${why}`);
}
