import { ChunkRef, Inode, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, SPECIAL_TYPES } from './inode';
import { HOLE, HOLE_REF, type Namespace } from './namespace';
import { ImageLoader, walkImage } from './namespace-image';
import { MAX_PAYLOAD_BYTES } from './oplog/frame';
import { xattrEntries } from './xattrs';

/**
 * Binary encoding of namespace-image entries, many per checkpoint frame (little-endian):
 *
 *   payload: u32 entry count | entries
 *   entry:   u8 kind | f64 ino | f64 parentIno | u16 name length | name (UTF-8) | rest by kind
 *     DIR      attrs
 *     FILE     attrs | u8 replication | u32 chunk count | count x (f64 handle | f64 version)
 *     SYMLINK  attrs | u32 target length | target (UTF-8)
 *     LINK     nothing: one more hard link to an inode given in full earlier
 *     SPECIAL  attrs | u32 rdev (a FIFO, socket or device node; format 4 on)
 *     XATTRS   u32 count | count x (u16 name length | name | u32 value length | value): the
 *              extended attributes of the inode of the full entry just before (format 5 on;
 *              its parentIno is 0 and its name empty)
 *   attrs:   u32 mode | u32 uid | u32 gid | u32 nlink | f64 size | f64 atimeMs | f64 mtimeMs | f64 ctimeMs
 *
 * Fixed-width fields keep decoding a straight run of DataView reads into Inode objects. Numbers
 * that may pass 2^32 (inode numbers, sizes, chunk handles) or carry fractions (times) are
 * float64, which holds every JS number exactly.
 *
 * Format 2 (before per-file replication factors) is the same without FILE's replication byte;
 * its files decode with factor 0, the cluster default. Formats 2 and 3 have no SPECIAL entries.
 */
const DIR = 1;
const FILE = 2;
const SYMLINK = 3;
const LINK = 4;
const SPECIAL = 5;
const XATTRS = 6;
/** st_mode type bits each full-entry kind but SPECIAL must carry. */
const KIND_TYPE = [0, S_IFDIR, S_IFREG, S_IFLNK];
/** Whether st_mode type bits `type` fit a full entry of `kind`. */
function typeFits(kind: number, type: number): boolean {
  return kind === SPECIAL ? SPECIAL_TYPES.includes(type) : type === KIND_TYPE[kind];
}

/** kind, ino, parentIno: what precedes the name. */
const HEAD_BYTES = 1 + 8 + 8;
const ATTR_BYTES = 4 * 4 + 4 * 8;
/** A frame is cut after the entry that takes its payload past this size. */
const FRAME_TARGET_BYTES = 1024 * 1024;

/**
 * Encodes the image entries of `ns` into frame payloads of about 1 MiB, handing each to
 * `emit`, which must use it before returning (the buffer is reused). Returns the entry count.
 */
export function encodeImage(ns: Namespace, emit: (payload: Buffer) => void): number {
  const w = new EntryWriter(emit);
  walkImage(ns, (node, parentIno, name, isLink) => w.entry(node, parentIno, name, isLink));
  w.flush();
  return w.total;
}

/** The number of entries in a frame payload, without decoding them (for verification). */
export function imageFrameEntries(payload: Buffer): number {
  if (payload.length < 4) throw new Error('image frame too short');
  return payload.readUInt32LE(0);
}

/** Decodes a frame payload straight into `loader`; throws unless it is exactly its entries. */
export function decodeImageFrame(payload: Buffer, loader: ImageLoader): void {
  const v = new DataView(payload.buffer, payload.byteOffset, payload.length);
  const hasReplication = loader.format >= 3;
  const lastKind = loader.format >= 4 ? SPECIAL : SYMLINK;
  const count = imageFrameEntries(payload);
  let off = 4;
  for (let i = 0; i < count; i++) {
    const kind = v.getUint8(off);
    const ino = v.getFloat64(off + 1, true);
    const parentIno = v.getFloat64(off + 9, true);
    const nameBytes = v.getUint16(off + HEAD_BYTES, true);
    off += HEAD_BYTES + 2;
    const name = utf8(payload, off, nameBytes);
    off += nameBytes;
    if (kind === LINK) {
      loader.addLink(ino, parentIno, name);
      continue;
    }
    if (kind === XATTRS && loader.format >= 5) {
      const xattrs: Array<[string, Buffer]> = [];
      const n = v.getUint32(off, true);
      off += 4;
      for (let x = 0; x < n; x++) {
        const nameLength = v.getUint16(off, true);
        const xattrName = utf8(payload, off + 2, nameLength);
        off += 2 + nameLength;
        const valueLength = v.getUint32(off, true);
        off += 4;
        if (off + valueLength > payload.length) throw new Error(`image entry overruns its frame at byte ${off}`);
        xattrs.push([xattrName, payload.subarray(off, off + valueLength)]);
        off += valueLength;
      }
      loader.addXattrs(ino, xattrs);
      continue;
    }
    const mode = v.getUint32(off, true);
    if (kind < DIR || kind > lastKind || !typeFits(kind, mode & S_IFMT)) {
      throw new Error(`image entry for inode ${ino} has kind ${kind} and mode ${mode.toString(8)}`);
    }
    const uid = v.getUint32(off + 4, true);
    const gid = v.getUint32(off + 8, true);
    const nlink = v.getUint32(off + 12, true);
    const size = v.getFloat64(off + 16, true);
    const atimeMs = v.getFloat64(off + 24, true);
    const mtimeMs = v.getFloat64(off + 32, true);
    const ctimeMs = v.getFloat64(off + 40, true);
    off += ATTR_BYTES;
    let children: Map<string, Inode> | null = null;
    let target: string | null = null;
    let chunks: ChunkRef[] | null = null;
    let replication = 0;
    let rdev = 0;
    if (kind === DIR) {
      children = new Map();
    } else if (kind === FILE) {
      if (hasReplication) replication = v.getUint8(off++);
      const n = v.getUint32(off, true);
      off += 4;
      chunks = [];
      for (let c = 0; c < n; c++, off += 16) {
        const handle = v.getFloat64(off, true);
        chunks.push(handle === HOLE ? HOLE_REF : { handle, version: v.getFloat64(off + 8, true) });
      }
    } else if (kind === SYMLINK) {
      const bytes = v.getUint32(off, true);
      off += 4;
      target = utf8(payload, off, bytes);
      off += bytes;
    } else {
      rdev = v.getUint32(off, true);
      off += 4;
    }
    loader.addInode(
      new Inode(ino, mode, uid, gid, atimeMs, mtimeMs, ctimeMs, nlink, size, children, target, chunks, replication, rdev),
      parentIno,
      name,
    );
  }
  if (off !== payload.length) throw new Error(`image frame has ${payload.length - off} stray bytes`);
}

/** Checked: toString() would silently stop at the end of the buffer. */
function utf8(buf: Buffer, at: number, bytes: number): string {
  if (at + bytes > buf.length) throw new Error(`image entry overruns its frame at byte ${at}`);
  return buf.toString('utf8', at, at + bytes);
}

/** Appends entries to one buffer, reused for every frame and grown for oversized entries. */
class EntryWriter {
  total = 0;
  private buf = Buffer.allocUnsafe(2 * FRAME_TARGET_BYTES);
  private view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  /** Past the entry count, which flush() fills in. */
  private off = 4;
  private count = 0;

  constructor(private readonly emit: (payload: Buffer) => void) {}

  entry(node: Inode, parentIno: number, name: string, isLink: boolean): void {
    const kind = isLink ? LINK : node.isDir ? DIR : node.isFile ? FILE : node.isSymlink ? SYMLINK : node.isSpecial ? SPECIAL : 0;
    if (kind === 0) throw new Error(`inode ${node.ino} has no known type (mode ${node.mode.toString(8)})`);
    this.reserve(HEAD_BYTES);
    this.view.setUint8(this.off, kind);
    this.view.setFloat64(this.off + 1, node.ino, true);
    this.view.setFloat64(this.off + 9, parentIno, true);
    this.off += HEAD_BYTES;
    this.string(name, 2);
    if (kind !== LINK) {
      this.reserve(ATTR_BYTES);
      const v = this.view;
      const off = this.off;
      this.u32(off, node.mode);
      this.u32(off + 4, node.uid);
      this.u32(off + 8, node.gid);
      this.u32(off + 12, node.nlink);
      v.setFloat64(off + 16, node.size, true);
      v.setFloat64(off + 24, node.atimeMs, true);
      v.setFloat64(off + 32, node.mtimeMs, true);
      v.setFloat64(off + 40, node.ctimeMs, true);
      this.off += ATTR_BYTES;
      if (kind === FILE) {
        this.reserve(1);
        this.u8(this.off++, node.replication);
        this.chunks(node.chunks!);
      }
      else if (kind === SYMLINK) this.string(node.target!, 4);
      else if (kind === SPECIAL) {
        this.reserve(4);
        this.u32(this.off, node.rdev);
        this.off += 4;
      }
    }
    this.count++;
    if (kind !== LINK && node.xattrs) this.xattrs(node.ino, xattrEntries(node));
    if (this.off >= FRAME_TARGET_BYTES) this.flush();
  }

  /** The XATTRS entry of inode `ino`, in the frame of its full entry. */
  private xattrs(ino: number, xattrs: Array<[string, Buffer]>): void {
    this.reserve(HEAD_BYTES + 2 + 4);
    this.view.setUint8(this.off, XATTRS);
    this.view.setFloat64(this.off + 1, ino, true);
    this.view.setFloat64(this.off + 9, 0, true);
    this.view.setUint16(this.off + HEAD_BYTES, 0, true);
    this.view.setUint32(this.off + HEAD_BYTES + 2, xattrs.length, true);
    this.off += HEAD_BYTES + 2 + 4;
    for (const [name, value] of xattrs) {
      this.string(name, 2);
      this.reserve(4 + value.length);
      this.view.setUint32(this.off, value.length, true);
      this.buf.set(value, this.off + 4);
      this.off += 4 + value.length;
    }
    this.count++;
  }

  flush(): void {
    if (this.count === 0) return;
    if (this.off > MAX_PAYLOAD_BYTES) throw new Error(`image frame of ${this.off} bytes is too large to read back`);
    this.view.setUint32(0, this.count, true);
    this.emit(this.buf.subarray(0, this.off));
    this.total += this.count;
    this.off = 4;
    this.count = 0;
  }

  /** DataView would silently wrap a value outside u32; a checkpoint must not change it. */
  private u32(at: number, value: number): void {
    if (value >>> 0 !== value) throw new Error(`attribute value ${value} does not fit the image's u32 field`);
    this.view.setUint32(at, value, true);
  }

  private u8(at: number, value: number): void {
    if ((value & 0xff) !== value) throw new Error(`value ${value} does not fit the image's u8 field`);
    this.view.setUint8(at, value);
  }

  private chunks(chunks: ChunkRef[]): void {
    this.reserve(4 + 16 * chunks.length);
    this.view.setUint32(this.off, chunks.length, true);
    this.off += 4;
    for (const c of chunks) {
      this.view.setFloat64(this.off, c.handle, true);
      this.view.setFloat64(this.off + 8, c.version, true);
      this.off += 16;
    }
  }

  /** UTF-8 with a `lengthBytes` (2 or 4) length prefix. */
  private string(s: string, lengthBytes: 2 | 4): void {
    this.reserve(lengthBytes + 3 * s.length); // a UTF-16 unit never takes more than 3 UTF-8 bytes
    const bytes = this.buf.write(s, this.off + lengthBytes, 'utf8');
    if (lengthBytes === 2) {
      if (bytes > 0xffff) throw new Error(`name of ${bytes} bytes cannot be encoded`);
      this.view.setUint16(this.off, bytes, true);
    } else {
      this.view.setUint32(this.off, bytes, true);
    }
    this.off += lengthBytes + bytes;
  }

  private reserve(bytes: number): void {
    if (this.off + bytes <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.off + bytes));
    this.buf.copy(bigger, 0, 0, this.off);
    this.buf = bigger;
    this.view = new DataView(bigger.buffer, bigger.byteOffset, bigger.length);
  }
}
