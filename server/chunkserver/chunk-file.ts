import { crc32c } from '@node-rs/crc32';
import * as fs from 'fs';
import * as path from 'path';
import { readFully, readMaybeDirect, writeFully, writeMaybeDirect } from './direct-io';
import type { OpenChunk } from './open-chunk-files';
import { FsError } from '../common/fs-error';
import {
  BLOCK_SIZE,
  CHECKSUM_BYTES,
  MISSING_CHECKSUM,
  blockChecksum,
  blockCount,
  blockOf,
  decodeChecksums,
  encodeChecksums,
  zeroBlockChecksum,
} from './block-checksums';

/**
 * The on-disk format of one chunk, inside a data directory:
 *
 *   chunks/<hh>/<handle>.data       the chunk's bytes; the file's length is the chunk's size
 *   chunks/<hh>/<handle>.meta       header (32 bytes), then one u32 CRC32C per 64 KiB block
 *   chunks/<hh>/<handle>.meta.tmp   a .meta being replaced (ignored and removed by the scan)
 *
 * <hh> is the handle modulo 256 in two hex digits, <handle> is decimal. The header is
 *
 *   "CFSCHK01" | u64 handle | u64 version | u32 block size | u32 CRC32C of the 28 bytes before
 *
 * (little-endian). The header only changes by writing a whole new .meta to .meta.tmp, syncing
 * it, renaming it over .meta and syncing the directory, so a crash leaves the old or the new
 * version. Data and checksums are updated in place, data first; neither is trusted alone: a
 * crash between the two leaves a block whose bytes and checksum disagree (or a checksum missing
 * past the end of .meta), which every read detects as corruption rather than returning it.
 */
export const CHUNKS_SUBDIR = 'chunks';
const META_HEADER_BYTES = 32;
const META_MAGIC = 'CFSCHK01';
/** Blocks verified per read when checking a whole chunk (bounds the buffer to 1 MiB). */
export const VERIFY_BLOCKS_PER_STEP = 16;

/** A checksum mismatch: the chunk's content cannot be trusted (the disk is not to blame). */
export class ChunkCorruptError extends FsError {
  constructor(
    readonly handle: number,
    readonly block: number,
    detail: string,
  ) {
    super('EIO', `checksum mismatch in chunk ${handle} block ${block}: ${detail}`);
  }
}

export type ChunkFileKind = 'data' | 'meta' | 'tmp';

/** What a chunk's files say about it when the data directory is scanned. */
export interface StoredChunk {
  version: number;
  size: number;
}

/** A new range of bytes laid over a chunk (a write). */
interface Overlay {
  offset: number;
  bytes: Buffer;
}

type FileHandle = fs.promises.FileHandle;

export const fanOutName = (handle: number): string => (handle % 256).toString(16).padStart(2, '0');

/** The name's handle and kind, or null for a file that is not part of a chunk. */
export function parseChunkFileName(name: string): { handle: number; kind: ChunkFileKind } | null {
  const m = /^(\d{1,16})\.(data|meta|meta\.tmp)$/.exec(name);
  if (!m || !Number.isSafeInteger(Number(m[1]))) return null;
  return { handle: Number(m[1]), kind: m[2] === 'meta.tmp' ? 'tmp' : (m[2] as ChunkFileKind) };
}

/**
 * One chunk's files. Stateless apart from the paths: the caller (ChunkStore) knows the size,
 * validates arguments, serialises operations on the same chunk and holds files open for reads. Disk errors are thrown as
 * Node errors for the caller to classify; a checksum mismatch is a ChunkCorruptError.
 */
export class ChunkFile {
  private readonly dir: string;
  readonly dataPath: string;
  readonly metaPath: string;

  constructor(
    dataDir: string,
    readonly handle: number,
  ) {
    this.dir = path.join(dataDir, CHUNKS_SUBDIR, fanOutName(handle));
    this.dataPath = path.join(this.dir, `${handle}.data`);
    this.metaPath = path.join(this.dir, `${handle}.meta`);
  }

  /** Creates an empty chunk (replacing leftovers of an earlier one); durable when it resolves. */
  async create(version: number): Promise<void> {
    await withFile(this.dataPath, 'w', async () => undefined);
    await this.replaceMeta(version, Buffer.alloc(0));
  }

  /**
   * Creates the chunk at `version` holding `bytes` at `offset` (zeros before them), durable when
   * it resolves, and hands back its files open (for OpenChunkFiles). A new chunk's first write
   * is on the path of every small file, so it costs three rounds of disk calls instead of a
   * dozen: the files are opened together (the .meta made in place: a crash before this resolves
   * leaves a chunk with a damaged header, which the start-up scan removes, or one the master
   * never confirmed), written together, and synced together with their directory.
   */
  async createWritten(version: number, offset: number, bytes: Buffer): Promise<{ size: number; data: FileHandle; meta: FileHandle }> {
    const size = offset + bytes.length;
    const opened = await Promise.allSettled([fs.promises.open(this.dataPath, 'w+'), fs.promises.open(this.metaPath, 'w+'), fs.promises.open(this.dir, 'r')]);
    const failed = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    const [data, meta, dir] = opened.map((r) => (r.status === 'fulfilled' ? r.value : null));
    try {
      if (failed) throw failed.reason;
      // From size 0 nothing is read back: blocks before `offset` are zeros.
      const checksums = await this.checksumsAfter(data!, meta!, 0, size, 0, blockOf(size - 1), { offset, bytes });
      const metaBytes = Buffer.concat([encodeHeader(this.handle, version), encodeChecksums(checksums)]);
      await Promise.all([writeMaybeDirect(data!, this.dataPath, bytes, offset), writeFully(meta!, metaBytes, 0)]);
      await Promise.all([data!.datasync(), meta!.datasync(), dir!.sync()]);
      return { size, data: data!, meta: meta! };
    } catch (err) {
      await Promise.allSettled([data?.close(), meta?.close()]);
      throw err;
    } finally {
      void dir?.close().catch(() => undefined);
    }
  }

  /** Version and size from the files, or null when the header is damaged or not this chunk's. */
  async load(): Promise<StoredChunk | null> {
    const header = await withFile(this.metaPath, 'r', (fh) => readAt(fh, 0, META_HEADER_BYTES));
    const version = decodeHeader(header, this.handle);
    if (version === null) return null;
    return { version, size: (await fs.promises.stat(this.dataPath)).size };
  }

  /**
   * Bytes [offset, offset + length) cut at `size`, every block they touch verified, through
   * files held open (`open`). A .data unlinked meanwhile (the chunk's files or their whole
   * directory removed under us) fails the read with ENOENT, as opening it by name would. (A
   * lone .meta removed is not checked here: the checksums in memory still verify the data, and
   * the next write or scrub opens it by name.)
   */
  async read(open: OpenChunk, size: number, offset: number, length: number): Promise<Buffer> {
    const end = Math.min(offset + length, size);
    if (end <= offset) return Buffer.alloc(0);
    const first = blockOf(offset);
    const base = first * BLOCK_SIZE;
    const count = blockCount(size);
    const all = open.checksums(size, () => checksumsIn(open.meta)(0, count));
    const [blocks] = await Promise.all([
      this.readVerified(open.data, (from, n) => all.then((sums) => sums.slice(from, from + n)), size, first, blockOf(end - 1)),
      checkLinked(open.data, this.dataPath),
    ]);
    return blocks.subarray(offset - base, end - base);
  }

  /** Verifies blocks [first, last] of a chunk of `size` bytes; throws ChunkCorruptError. */
  async verifyBlocks(size: number, first: number, last: number): Promise<void> {
    if (last < first) return;
    await this.withFiles('r', (data, meta) => this.readVerified(data, checksumsIn(meta), size, first, last));
  }

  /**
   * Writes `bytes` at `offset` (a gap past `size` becomes a hole) through files held open
   * (`open`); returns the new size. Data and checksums are written side by side, then synced
   * side by side: a crash leaves them agreeing or not, and reads catch the latter either way.
   */
  async write(open: OpenChunk, size: number, offset: number, bytes: Buffer, durable: boolean): Promise<number> {
    if (bytes.length === 0) return size;
    const end = offset + bytes.length;
    const newSize = Math.max(size, end);
    const first = blockOf(Math.min(offset, size));
    const { data, meta } = open;
    // Files unlinked under us (their directory removed) would take the write and lose it.
    const [checksums] = await Promise.all([
      this.checksumsAfter(data, meta, size, newSize, first, blockOf(end - 1), { offset, bytes }),
      checkLinked(data, this.dataPath),
      checkLinked(meta, this.metaPath),
    ]);
    await Promise.all([writeMaybeDirect(data, this.dataPath, bytes, offset), writeFully(meta, encodeChecksums(checksums), checksumOffset(first))]);
    if (durable) await Promise.all([data.datasync(), meta.datasync()]);
    return newSize;
  }

  /** Shrinks or grows (with zeros) the chunk to `newSize`. */
  async truncate(size: number, newSize: number, durable: boolean): Promise<void> {
    if (newSize === size) return;
    // Shrinking re-checksums only a new partial last block; growing, every block from the old end.
    const first = blockOf(Math.min(size, newSize));
    const last = blockOf(newSize - 1);
    await this.withFiles('r+', async (data, meta) => {
      const checksums = await this.checksumsAfter(data, meta, size, newSize, first, last, null);
      await data.truncate(newSize);
      if (checksums.length > 0) await writeFully(meta, encodeChecksums(checksums), checksumOffset(first));
      await meta.truncate(checksumOffset(blockCount(newSize)));
      if (durable) await Promise.all([data.datasync(), meta.datasync()]);
    });
  }

  /** Durably replaces the version, keeping the checksums of a chunk of `size` bytes. */
  async setVersion(size: number, version: number): Promise<void> {
    const checksumBytes = blockCount(size) * CHECKSUM_BYTES;
    const checksums = await withFile(this.metaPath, 'r', (fh) => readAt(fh, META_HEADER_BYTES, checksumBytes));
    await this.replaceMeta(version, checksums);
  }

  async remove(): Promise<void> {
    // .meta first: a crash in between leaves a .data without .meta, which the scan removes.
    await fs.promises.rm(this.metaPath, { force: true });
    await fs.promises.rm(this.dataPath, { force: true });
  }

  private async replaceMeta(version: number, checksums: Buffer): Promise<void> {
    const tmp = `${this.metaPath}.tmp`;
    await withFile(tmp, 'w', async (fh) => {
      await writeFully(fh, Buffer.concat([encodeHeader(this.handle, version), checksums]), 0);
      await fh.datasync();
    });
    await fs.promises.rename(tmp, this.metaPath);
    await fsyncDir(this.dir);
  }

  /**
   * Checksums of blocks [first, last] once the chunk goes from `size` to `newSize` bytes with
   * `overlay` laid over it. A block only partly overwritten is read back and verified first
   * (as GFS does): otherwise its new checksum would bless corruption in the part kept.
   */
  private async checksumsAfter(
    data: FileHandle,
    meta: FileHandle,
    size: number,
    newSize: number,
    first: number,
    last: number,
    overlay: Overlay | null,
  ): Promise<number[]> {
    const checksums: number[] = [];
    for (let b = first; b <= last; b++) {
      const start = b * BLOCK_SIZE;
      const end = Math.min(start + BLOCK_SIZE, newSize);
      const from = overlay ? Math.max(start, overlay.offset) : end;
      const to = overlay ? Math.min(end, overlay.offset + overlay.bytes.length) : end;
      if (overlay && from === start && to === end) {
        checksums.push(blockChecksum(overlay.bytes.subarray(start - overlay.offset, end - overlay.offset)));
      } else if (start >= size && from >= to) {
        checksums.push(zeroBlockChecksum(end - start));
      } else {
        const block = Buffer.alloc(end - start);
        if (start < size) (await this.readVerified(data, checksumsIn(meta), size, b, b)).copy(block);
        if (overlay && from < to) overlay.bytes.copy(block, from - start, from - overlay.offset, to - overlay.offset);
        checksums.push(blockChecksum(block));
      }
    }
    return checksums;
  }

  /** Blocks [first, last] of a chunk of `size` bytes, each checked against its checksum. */
  private async readVerified(data: FileHandle, checksums: ChecksumSource, size: number, first: number, last: number): Promise<Buffer> {
    const start = first * BLOCK_SIZE;
    const buf = Buffer.allocUnsafe(Math.min((last + 1) * BLOCK_SIZE, size) - start);
    const count = last - first + 1;
    const [got, sums] = await Promise.all([readMaybeDirect(data, this.dataPath, buf, start), checksums(first, count)]);
    for (let i = 0; i < count; i++) {
      const from = i * BLOCK_SIZE;
      const to = Math.min(from + BLOCK_SIZE, buf.length);
      if (got < to) throw new ChunkCorruptError(this.handle, first + i, 'data file is shorter than the chunk');
      if (sums[i] === MISSING_CHECKSUM) throw new ChunkCorruptError(this.handle, first + i, 'checksum missing');
      if (blockChecksum(buf.subarray(from, to)) !== sums[i]) {
        throw new ChunkCorruptError(this.handle, first + i, 'data does not match its checksum');
      }
    }
    return buf;
  }

  private withFiles<T>(flags: 'r' | 'r+', fn: (data: FileHandle, meta: FileHandle) => Promise<T>): Promise<T> {
    return withFile(this.dataPath, flags, (data) => withFile(this.metaPath, flags, (meta) => fn(data, meta)));
  }
}

const checksumOffset = (block: number): number => META_HEADER_BYTES + block * CHECKSUM_BYTES;

/** Checksums of `count` blocks from block `first` (MISSING_CHECKSUM where none is stored). */
type ChecksumSource = (first: number, count: number) => Promise<number[]>;

/** The checksums as stored in the open .meta file `meta`. */
const checksumsIn =
  (meta: FileHandle): ChecksumSource =>
  async (first, count) =>
    decodeChecksums(await readAt(meta, checksumOffset(first), count * CHECKSUM_BYTES), count);

/** Throws ENOENT when the open file `fh` (named `file`) has been unlinked. */
async function checkLinked(fh: FileHandle, file: string): Promise<void> {
  if ((await fh.stat()).nlink === 0) {
    throw Object.assign(new Error(`ENOENT: ${file} was removed while open`), { code: 'ENOENT' });
  }
}

function encodeHeader(handle: number, version: number): Buffer {
  const buf = Buffer.alloc(META_HEADER_BYTES);
  buf.write(META_MAGIC, 0, 'latin1');
  buf.writeBigUInt64LE(BigInt(handle), 8);
  buf.writeBigUInt64LE(BigInt(version), 16);
  buf.writeUInt32LE(BLOCK_SIZE, 24);
  buf.writeUInt32LE(crc32c(buf.subarray(0, 28)), 28);
  return buf;
}

/** The version in a header, or null when the header is damaged or belongs to something else. */
function decodeHeader(buf: Buffer, handle: number): number | null {
  if (buf.length < META_HEADER_BYTES || buf.toString('latin1', 0, 8) !== META_MAGIC) return null;
  if (crc32c(buf.subarray(0, 28)) !== buf.readUInt32LE(28)) return null;
  if (Number(buf.readBigUInt64LE(8)) !== handle || buf.readUInt32LE(24) !== BLOCK_SIZE) return null;
  const version = Number(buf.readBigUInt64LE(16));
  return Number.isSafeInteger(version) ? version : null;
}

/** Up to `length` bytes from `position` (fewer at the end of the file). */
async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  return buf.subarray(0, await readFully(fh, buf, position));
}

/** Makes renames and creations in `dir` durable. */
function fsyncDir(dir: string): Promise<void> {
  return withFile(dir, 'r', (fh) => fh.sync());
}

async function withFile<T>(file: string, flags: string, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
  const fh = await fs.promises.open(file, flags);
  try {
    return await fn(fh);
  } finally {
    await fh.close();
  }
}
