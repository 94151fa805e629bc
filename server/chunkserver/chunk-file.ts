import { crc32c } from '@node-rs/crc32';
import * as fs from 'fs';
import * as path from 'path';
import { blockingIo, readFully, readMaybeDirect, writeFully, writeMaybeDirect, writesDirect, type FileIo } from './direct-io';
import type { OpenChunk } from './open-chunk-files';
import type { Spare } from './spare-files';
import { BufferPool } from '../common/buffer-pool';
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
 * The on-disk format of one chunk, inside a data directory: one file, chunks/<hh>/<handle>.chunk
 * (<hh> is the handle modulo 256 in two hex digits, <handle> is decimal), laid out as
 *
 *   [0, 8192)              the header, in two slots: at 0 and at 4096 (each in a page of its own)
 *   [8192, dataOffset)     one u32 CRC32C per 64 KiB block of data (zeros past the chunk's end)
 *   [dataOffset, ...)      the chunk's bytes
 *
 * A header slot is (little-endian)
 *
 *   "CFSCHK02" | u64 handle | u64 version | u64 size | u64 seq | u32 block size | u32 data offset
 *   | u64 born | u32 CRC32C of the 56 bytes before
 *
 * and the valid slot with the higher seq is the header. A header change writes the other slot
 * with seq + 1, so a crash (a torn write too) leaves the old header or the new one. `born` (ms,
 * increasing within a process) tells two files of one handle and version apart: a chunk deleted
 * and created again (a corrupt replica replaced by a copy) whose unlink and rename a crash both
 * undid leaves both, and the later one is the truth.
 *
 * Why one file whose header names it: a new chunk's first write is on the path of every small
 * file. Creating files and syncing their directory costs a journal commit each (three replicas
 * on one disk: 4-7 ms); overwriting a file made ahead of time (spare-files.ts) syncs data only
 * (0.3-1 ms). The rename that takes a spare is not synced: the header, not the name, makes the
 * file this chunk's, and the scan finds a chunk whose rename a crash undid among the spares.
 *
 * Data, checksums and header are written in place side by side and synced together; none is
 * trusted alone: a crash in between leaves a block whose bytes and checksum disagree, which
 * every read detects as corruption rather than returning it. Nor are the file's bytes past the
 * chunk's size trusted (a spare's zeros, or a write a crash cut short): a write that leaves a
 * gap, and a truncate, first cut the file at the chunk's end, so a gap reads as a hole.
 */
export const CHUNKS_SUBDIR = 'chunks';
const HEADER_MAGIC = 'CFSCHK02';
const HEADER_BYTES = 60;
const HEADER_SLOTS = [0, 4096];
export const CHECKSUMS_AT = 8192;
/**
 * Writes up to this size are small: a new chunk's first one goes out as one write with its
 * header and checksums, and any of them may be made on the main thread (see `mayBlock`).
 */
export const SMALL_WRITE_BYTES = 64 * 1024;
/** Blocks verified per read when checking a whole chunk (bounds the buffer to 1 MiB). */
export const VERIFY_BLOCKS_PER_STEP = 16;

/** Where the data starts in the file of a chunk that may grow to `chunkSize` bytes. */
export const dataOffsetFor = (chunkSize: number): number =>
  CHECKSUMS_AT + Math.ceil((blockCount(chunkSize) * CHECKSUM_BYTES) / 4096) * 4096;

/** The largest size a chunk whose data starts at `dataOffset` can reach (its checksums' room). */
export const capacityAt = (dataOffset: number): number => ((dataOffset - CHECKSUMS_AT) / CHECKSUM_BYTES) * BLOCK_SIZE;

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

/** What a chunk's header says; kept in memory by the store, and passed back in. */
export interface ChunkState {
  version: number;
  /** When the chunk was created here (ms, see above). */
  born: number;
  /** Bytes. */
  size: number;
  /** The header's sequence number (its slot is seq % 2). */
  seq: number;
  dataOffset: number;
}

/** A new range of bytes laid over a chunk (a write). */
interface Overlay {
  offset: number;
  bytes: Buffer;
}

type FileHandle = fs.promises.FileHandle;

export const fanOutName = (handle: number): string => (handle % 256).toString(16).padStart(2, '0');

/** The file holding chunk `handle` in the data directory `dataDir`. */
export const chunkFilePath = (dataDir: string, handle: number): string =>
  path.join(dataDir, CHUNKS_SUBDIR, fanOutName(handle), `${handle}.chunk`);

/** The handle a chunk file's name (as chunkFilePath makes it) stands for, or null. */
export function chunkFileHandle(name: string): number | null {
  const m = /^(\d{1,16})\.chunk$/.exec(name);
  return m && Number.isSafeInteger(Number(m[1])) ? Number(m[1]) : null;
}

/** One buffer for every small chunk laid out and written synchronously (see ChunkFile.create). */
let layoutBuffer = Buffer.alloc(0);
function reusedLayout(length: number): Buffer {
  if (layoutBuffer.length < length) layoutBuffer = Buffer.alloc(length);
  return layoutBuffer.subarray(0, length);
}

/**
 * One chunk's file. Stateless apart from its path: the caller (ChunkStore) keeps the chunk's
 * ChunkState, validates arguments, serialises operations on the same chunk and holds files open.
 * Disk errors are thrown as Node errors for the caller to classify; a checksum mismatch is a
 * ChunkCorruptError.
 */
export class ChunkFile {
  readonly path: string;
  private readonly dir: string;

  constructor(
    dataDir: string,
    readonly handle: number,
  ) {
    this.path = chunkFilePath(dataDir, handle);
    this.dir = path.dirname(this.path);
  }

  /**
   * Creates the chunk at `version` holding `bytes` at `offset` (zeros before them), durable when
   * it resolves, and hands back its file open (for OpenChunkFiles). `taken` is a file made ahead
   * of time (spare-files.ts): opened by its spare name unless it comes open, and renamed once its
   * bytes are synced (the rename not synced: see above); without one, a new file is created and
   * its directory synced. When `mayBlock()` (nothing else is waiting on the disk), a small file's
   * chunk taken from a spare is written, synced and renamed on the main thread (~0.5 ms): through
   * the thread pool these are three round trips, each two thread wake-ups, on the path of every
   * small file.
   *
   * Why the rename comes after the sync: a rename marks the file newly linked, and on ext4
   * without a journal the file's next sync then also writes its new directory's block and inode,
   * each waited for in turn (`ext4_sync_parent`): two more waits on the disk per replica.
   */
  async create(version: number, dataOffset: number, offset: number, bytes: Buffer, taken: Spare | null, mayBlock: () => boolean = () => false): Promise<{ state: ChunkState; fh: FileHandle }> {
    const spare = taken?.path ?? null;
    const fh = taken?.fh ?? (await fs.promises.open(spare ?? this.path, spare ? 'r+' : 'w+'));
    try {
      const state: ChunkState = { version, born: birthStamp(), size: offset + bytes.length, seq: 1, dataOffset };
      // From size 0 nothing is read back: blocks before `offset` are zeros. The whole checksum
      // area is written, zeros past the end: a spare's leftovers (data and checksums of a create
      // a crash cut short) must never verify as this chunk's bytes.
      const checksums = encodeChecksums(await this.checksumsAfter(fh, dataOffset, 0, state.size, 0, blockOf(state.size - 1), { offset, bytes }));
      if (spare && offset > 0) await fh.truncate(dataOffset); // the gap must read as zeros
      const small = offset === 0 && bytes.length <= SMALL_WRITE_BYTES && !writesDirect(bytes, dataOffset);
      if (small && spare && mayBlock()) {
        // Synchronous from here to the rename: the layout can go through one buffer kept for it
        // (fresh memory costs ~15 µs a page on this kind of machine, see the README).
        const buf = this.layOut(state, checksums, bytes, reusedLayout(dataOffset + bytes.length));
        for (let done = 0; done < buf.length; ) done += fs.writeSync(fh.fd, buf, done, buf.length - done, done);
        fs.fdatasyncSync(fh.fd);
        fs.renameSync(spare, this.path);
        return { state, fh };
      }
      const writes = small
        ? [writeFully(fh, this.layOut(state, checksums, bytes, Buffer.allocUnsafe(dataOffset + bytes.length)), 0)] // a small file's chunk: one pwrite
        : [writeMaybeDirect(fh, spare ?? this.path, bytes, dataOffset + offset), writeFully(fh, Buffer.concat([checksums, Buffer.alloc(dataOffset - CHECKSUMS_AT - checksums.length)]), CHECKSUMS_AT), this.writeHeader(fh, state)]; // (O_DIRECT opens the file by its name)
      await allDone(writes);
      await allDone([fh.datasync(), spare ? undefined : fsyncDir(this.dir)]);
      if (spare) await fs.promises.rename(spare, this.path);
      return { state, fh };
    } catch (err) {
      await fh.close().catch(() => undefined);
      // Nothing was acknowledged: what landed must not come back as a chunk at the next scan.
      await Promise.all([this.path, spare].map((p) => p && fs.promises.rm(p, { force: true }).catch(() => undefined)));
      throw err;
    }
  }

  /**
   * Header, checksum area (`checksums`, zeros after them) and data of a new chunk laid out in
   * `buf` (its contents ignored), which must hold exactly that from the file's start.
   */
  private layOut(state: ChunkState, checksums: Buffer, bytes: Buffer, buf: Buffer): Buffer {
    buf.fill(0, 0, state.dataOffset);
    encodeHeader(this.handle, state).copy(buf, HEADER_SLOTS[state.seq % 2]);
    checksums.copy(buf, CHECKSUMS_AT);
    bytes.copy(buf, state.dataOffset);
    return buf;
  }

  /**
   * Makes block `block`'s stored checksum one that its data can never match: the block reads as
   * corrupt from now on (a converted chunk's rot stays detectable, see legacy-chunk-files.ts).
   */
  async poisonBlock(state: ChunkState, block: number): Promise<void> {
    await withFile(this.path, 'r+', async (fh) => {
      const data = await readAt(fh, state.dataOffset + block * BLOCK_SIZE, Math.min(BLOCK_SIZE, state.size - block * BLOCK_SIZE));
      await writeFully(fh, encodeChecksums([(blockChecksum(data) ^ 0xffffffff) >>> 0]), checksumOffset(block));
      await fh.datasync();
    });
  }

  /** The header, or null when neither slot holds a valid one for this chunk. */
  async load(): Promise<ChunkState | null> {
    const header = await withFile(this.path, 'r', (fh) => readHeader(fh));
    return header?.handle === this.handle ? header.state : null;
  }

  /**
   * Bytes [offset, offset + length) cut at the chunk's size, every block they touch verified,
   * through its file held open (`open`). A file unlinked meanwhile (the chunk's file or its
   * whole directory removed under us) fails the read with ENOENT, as opening it by name would.
   */
  async read(open: OpenChunk, state: ChunkState, offset: number, length: number): Promise<Buffer> {
    const end = Math.min(offset + length, state.size);
    if (end <= offset) return Buffer.alloc(0);
    const first = blockOf(offset);
    const base = first * BLOCK_SIZE;
    const count = blockCount(state.size);
    const all = open.checksums(state.size, () => checksumsIn(open.fh)(0, count));
    const [blocks] = await Promise.all([
      this.readVerified(open.fh, state, (from, n) => all.then((sums) => sums.slice(from, from + n)), first, blockOf(end - 1)),
      checkLinked(open.fh, this.path),
    ]);
    return blocks.subarray(offset - base, end - base);
  }

  /** Verifies blocks [first, last] of the chunk from its file; throws ChunkCorruptError. */
  async verifyBlocks(state: ChunkState, first: number, last: number): Promise<void> {
    if (last < first) return;
    await withFile(this.path, 'r', (fh) => this.readVerified(fh, state, checksumsIn(fh), first, last));
  }

  /**
   * Writes `bytes` at `offset` (a gap past the size becomes a hole) through the file held open
   * (`open`); returns the new state. Data, checksums and (for a new size) the header are written
   * side by side, then synced together. When `mayBlock()`, a small write's reads, writes and
   * sync are made on the main thread (~0.5 ms): through the thread pool they are four round
   * trips, each two thread wake-ups, on the path of every small write of an existing chunk.
   */
  async write(open: OpenChunk, state: ChunkState, offset: number, bytes: Buffer, durable: boolean, mayBlock: () => boolean = () => false): Promise<ChunkState> {
    if (bytes.length === 0) return state;
    const small = bytes.length <= SMALL_WRITE_BYTES && !writesDirect(bytes, state.dataOffset + offset);
    const fh = small && mayBlock() ? blockingIo(open.fh.fd) : open.fh;
    const end = offset + bytes.length;
    const next = end > state.size ? { ...state, size: end, seq: state.seq + 1 } : state;
    const first = blockOf(Math.min(offset, state.size));
    // A file unlinked under us (its directory removed) would take the write and lose it. Both
    // are waited for: the file must stay open until the reads are done.
    const checksums = this.checksumsAfter(fh, state.dataOffset, state.size, next.size, first, blockOf(end - 1), { offset, bytes });
    await allDone([checksums, checkLinked(fh, this.path)]);
    if (offset > state.size) await fh.truncate(state.dataOffset + state.size);
    try {
      await allDone([
        writeMaybeDirect(fh, this.path, bytes, state.dataOffset + offset),
        writeFully(fh, encodeChecksums(await checksums), checksumOffset(first)),
        next !== state ? this.writeHeader(fh, next) : undefined,
      ]);
    } catch (err) {
      if (isNoSpace(err)) await this.undoFailedWrite(fh, state, first, blockOf(end - 1)); // its own failure is a disk fault
      throw err;
    }
    if (durable) await fh.datasync();
    return next;
  }

  /** Makes the writes made without a sync durable (see ChunkStore.writeRuns). */
  async sync(open: OpenChunk, mayBlock: () => boolean = () => false): Promise<void> {
    await (mayBlock() ? blockingIo(open.fh.fd) : open.fh).datasync();
  }

  /**
   * Puts the chunk back to `state` after a write to blocks [first, last] ran out of space: the
   * checksums and the header went in beside the data, which landed in part, and the bytes
   * written before must still verify. The data past the old end is cut off; the blocks up to it
   * are checksummed as they now are on disk (a failed write may have landed in part, as POSIX
   * allows), those past it cleared; the old size's header goes to the slot the write used,
   * under that sequence number, so the store's state (`state`) still names the newest slot
   * but one. None of this needs new space.
   */
  private async undoFailedWrite(fh: FileIo, state: ChunkState, first: number, last: number): Promise<void> {
    await fh.truncate(state.dataOffset + state.size);
    const sums: number[] = [];
    const kept = state.size > 0 ? Math.min(last, blockOf(state.size - 1)) : first - 1;
    if (kept >= first) {
      const start = first * BLOCK_SIZE;
      const data = await readAt(fh, state.dataOffset + start, Math.min((kept + 1) * BLOCK_SIZE, state.size) - start);
      for (let at = 0; at < data.length; at += BLOCK_SIZE) sums.push(blockChecksum(data.subarray(at, at + BLOCK_SIZE)));
    }
    const cleared = Buffer.alloc((last - first + 1 - sums.length) * CHECKSUM_BYTES);
    await writeFully(fh, Buffer.concat([encodeChecksums(sums), cleared]), checksumOffset(first));
    await this.writeHeader(fh, { ...state, seq: state.seq + 1 });
    await fh.datasync();
  }

  /** Shrinks or grows (with zeros) the chunk to `newSize`; returns the new state. */
  async truncate(state: ChunkState, newSize: number, durable: boolean): Promise<ChunkState> {
    if (newSize === state.size) return state;
    const next = { ...state, size: newSize, seq: state.seq + 1 };
    // Shrinking re-checksums only a new partial last block; growing, every block from the old end.
    const first = blockOf(Math.min(state.size, newSize));
    const last = blockOf(newSize - 1);
    await withFile(this.path, 'r+', async (fh) => {
      const checksums = await this.checksumsAfter(fh, state.dataOffset, state.size, newSize, first, last, null);
      // Cut at the smaller end, then grow: what lay past the old end must read as zeros.
      await fh.truncate(state.dataOffset + Math.min(state.size, newSize));
      if (newSize > state.size) await fh.truncate(state.dataOffset + newSize);
      // Shrinking also clears the checksums past the new end: the area holds zeros past it.
      const cleared = Math.max(0, blockCount(state.size) - first - checksums.length);
      const area = Buffer.concat([encodeChecksums(checksums), Buffer.alloc(cleared * CHECKSUM_BYTES)]);
      await allDone([area.length > 0 ? writeFully(fh, area, checksumOffset(first)) : undefined, this.writeHeader(fh, next)]);
      if (durable) await fh.datasync();
    });
    return next;
  }

  /**
   * Durably replaces the version, through the chunk's file held open (`open`); returns the new
   * state. When `mayBlock()`, the header's write and sync are made on the main thread (~0.3 ms):
   * through the thread pool they are three round trips on the path of every write lease.
   */
  async setVersion(open: OpenChunk, state: ChunkState, version: number, mayBlock: () => boolean): Promise<ChunkState> {
    const next = { ...state, version, seq: state.seq + 1 };
    const fh = mayBlock() ? blockingIo(open.fh.fd) : open.fh;
    // A file unlinked under us (its directory removed) would take the new version and lose it.
    await checkLinked(fh, this.path);
    await this.writeHeader(fh, next);
    await fh.datasync();
    return next;
  }

  async remove(): Promise<void> {
    await fs.promises.rm(this.path, { force: true });
  }

  private writeHeader(fh: FileIo, state: ChunkState): Promise<void> {
    return writeFully(fh, encodeHeader(this.handle, state), HEADER_SLOTS[state.seq % 2]);
  }

  /**
   * Checksums of blocks [first, last] once the chunk goes from `size` to `newSize` bytes with
   * `overlay` laid over it. A block only partly overwritten is read back and verified first
   * (as GFS does): otherwise its new checksum would bless corruption in the part kept.
   */
  private async checksumsAfter(
    fh: FileIo,
    dataOffset: number,
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
        // A block written in part is read back whole (verified at the old size) into scratch, then
        // cut or padded to the new: a fresh 64 KiB buffer costs ~0.25 ms in page faults on this
        // project's machines, and a flush of scattered small writes needs one per run.
        const { buf: whole, release } = scratch(blockScratch, BLOCK_SIZE);
        try {
          const kept = start < size ? (await this.readVerified(fh, { size, dataOffset }, checksumsIn(fh), b, b, whole)).length : 0;
          const block = whole.subarray(0, end - start);
          if (kept < block.length) block.fill(0, kept);
          if (overlay && from < to) overlay.bytes.copy(block, from - start, from - overlay.offset, to - overlay.offset);
          checksums.push(blockChecksum(block));
        } finally {
          release();
        }
      }
    }
    return checksums;
  }

  /** Blocks [first, last] of the chunk, each checked against its checksum. */
  private async readVerified(
    fh: FileIo,
    { size, dataOffset }: Pick<ChunkState, 'size' | 'dataOffset'>,
    checksums: ChecksumSource,
    first: number,
    last: number,
    /** Where to read them (at least their length), instead of a new buffer. */
    into?: Buffer,
  ): Promise<Buffer> {
    const start = first * BLOCK_SIZE;
    const length = Math.min((last + 1) * BLOCK_SIZE, size) - start;
    const buf = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    const count = last - first + 1;
    // Both settle before either fails: `into` may be scratch given back once this returns.
    const [got, sums] = await settledBoth(readMaybeDirect(fh, this.path, buf, dataOffset + start), checksums(first, count));
    for (let i = 0; i < count; i++) {
      const from = i * BLOCK_SIZE;
      const to = Math.min(from + BLOCK_SIZE, buf.length);
      if (got < to) throw new ChunkCorruptError(this.handle, first + i, 'the file is shorter than the chunk');
      if (sums[i] === MISSING_CHECKSUM) throw new ChunkCorruptError(this.handle, first + i, 'checksum missing');
      if (blockChecksum(buf.subarray(from, to)) !== sums[i]) {
        throw new ChunkCorruptError(this.handle, first + i, 'data does not match its checksum');
      }
    }
    return buf;
  }
}

const checksumOffset = (block: number): number => CHECKSUMS_AT + block * CHECKSUM_BYTES;

/** The checksum of `block` in `buf`, the file's bytes from its start (0 past them). */
const checksumAt = (buf: Buffer, block: number): number =>
  buf.length >= checksumOffset(block + 1) ? buf.readUInt32LE(checksumOffset(block)) : 0;

/** Checksums of `count` blocks from block `first` (MISSING_CHECKSUM where none is stored). */
type ChecksumSource = (first: number, count: number) => Promise<number[]>;

/** The checksums as stored in the open chunk file `fh`. */
const checksumsIn =
  (fh: FileIo): ChecksumSource =>
  async (first, count) =>
    decodeChecksums(await readAt(fh, checksumOffset(first), count * CHECKSUM_BYTES), count);

/** Throws ENOENT when the open file `fh` (named `file`) has been unlinked. */
export async function checkLinked(fh: FileIo, file: string): Promise<void> {
  if ((await fh.stat()).nlink === 0) {
    throw Object.assign(new Error(`ENOENT: ${file} was removed while open`), { code: 'ENOENT' });
  }
}

function encodeHeader(handle: number, s: ChunkState): Buffer {
  const buf = Buffer.alloc(HEADER_BYTES);
  buf.write(HEADER_MAGIC, 0, 'latin1');
  buf.writeBigUInt64LE(BigInt(handle), 8);
  buf.writeBigUInt64LE(BigInt(s.version), 16);
  buf.writeBigUInt64LE(BigInt(s.size), 24);
  buf.writeBigUInt64LE(BigInt(s.seq), 32);
  buf.writeUInt32LE(BLOCK_SIZE, 40);
  buf.writeUInt32LE(s.dataOffset, 44);
  buf.writeBigUInt64LE(BigInt(s.born), 48);
  buf.writeUInt32LE(crc32c(buf.subarray(0, 56)), 56);
  return buf;
}

/** One slot's header, or null when it is damaged, empty or of another format. */
function decodeHeader(buf: Buffer): { handle: number; state: ChunkState } | null {
  if (buf.length < HEADER_BYTES || buf.toString('latin1', 0, 8) !== HEADER_MAGIC) return null;
  if (crc32c(buf.subarray(0, 56)) !== buf.readUInt32LE(56) || buf.readUInt32LE(40) !== BLOCK_SIZE) return null;
  const [handle, version, size, seq, born] = [8, 16, 24, 32, 48].map((at) => Number(buf.readBigUInt64LE(at)));
  const dataOffset = buf.readUInt32LE(44);
  if (![handle, version, size, seq, born].every(Number.isSafeInteger) || dataOffset < CHECKSUMS_AT || dataOffset % 4096 !== 0) return null;
  return { handle, state: { version, born, size, seq, dataOffset } };
}

/** Of two files holding one chunk, whether `a` is the later: a higher version, else born later. */
export const isNewer = (a: ChunkState, b: ChunkState): boolean => a.version > b.version || (a.version === b.version && a.born > b.born);

let lastBorn = 0;
/** A creation time, later than any given before by this process. */
function birthStamp(): number {
  lastBorn = Math.max(Date.now(), lastBorn + 1);
  return lastBorn;
}

/** The file's header (the valid slot with the higher seq), or null when neither is valid. */
export async function readHeader(fh: FileHandle): Promise<{ handle: number; state: ChunkState } | null> {
  return headerIn(await readAt(fh, 0, HEADER_SLOTS[1] + HEADER_BYTES));
}

/** The header in `buf`, the file's bytes from its start (null when neither slot is valid). */
function headerIn(buf: Buffer): { handle: number; state: ChunkState } | null {
  const slots = HEADER_SLOTS.map((at) => decodeHeader(buf.subarray(at, at + HEADER_BYTES)));
  return slots.reduce((best, s) => (s && (!best || s.state.seq > best.state.seq) ? s : best), null);
}

/**
 * Bytes [offset, offset + length) of chunk `handle` at `version`, cut at its size, every block
 * they touch verified, from its file `fh` opened by a reader that keeps no state (a client on
 * the chunkserver's host, client/local-chunk-reads.ts): the header and checksums are read beside
 * the data, at `dataOffset`, where the caller expects the data (a wrong guess costs another
 * read). The chunkserver orders its own reads after the chunk's writes; this reader may meet a
 * write half done, which fails verification, as anything else unexpected does. Throws ESTALE
 * when the file holds another chunk or version, ChunkCorruptError on a mismatch.
 */
export async function readChunkFile(fh: FileIo, file: string, handle: number, version: number, offset: number, length: number, dataOffset: number): Promise<Buffer> {
  const first = blockOf(offset);
  const last = blockOf(offset + Math.max(length, 1) - 1);
  const base = first * BLOCK_SIZE;
  // The header, the checksums of the blocks read and of the one after them (see below).
  const meta = scratch(metaScratch, checksumOffset(last + 2));
  const blocks = scratch(blockScratch, (last - first + 1) * BLOCK_SIZE);
  // One read, not readFully: the blocks asked for usually run past the file's end, and asking
  // again only to be told 0 cost a thread-pool round trip per small file's read. A read cut short
  // by a failing disk instead leaves bytes missing, which the checks below refuse (the caller
  // then reads through the chunkserver, whose exact-length reads see the error).
  const readBlocks = async (at: number): Promise<Buffer> => blocks.buf.subarray(0, (await fh.read(blocks.buf, 0, blocks.buf.length, at + base)).bytesRead);
  try {
    // Both reads end before either fails: a read still filling a scratch buffer given back
    // would write into another read's bytes.
    const [metaLength, guessed] = await settledBoth(readFully(fh, meta.buf, 0), readBlocks(dataOffset));
    const header = headerIn(meta.buf.subarray(0, metaLength));
    if (header?.handle !== handle || header.state.version !== version) {
      throw new FsError('ESTALE', `${file} does not hold chunk ${handle} at version ${version}`);
    }
    const { size } = header.state;
    // At rest, no block past the chunk's end has a checksum (a create writes zeros there, a
    // shrink clears them). One that has is a write growing the chunk whose header has not landed
    // yet: the bytes before the old end may be new already, and cut at the old end they would be
    // a state that never was. (A read that the end does not cut needs no such care.)
    const pastEnd = blockCount(size);
    if (pastEnd <= last + 1 && pastEnd < capacityAt(header.state.dataOffset) / BLOCK_SIZE && checksumAt(meta.buf.subarray(0, metaLength), pastEnd) !== 0) {
      throw new FsError('EAGAIN', `chunk ${handle} is being written`);
    }
    const end = Math.min(offset + length, size);
    if (end <= offset) return Buffer.alloc(0);
    const data = header.state.dataOffset === dataOffset ? guessed : await readBlocks(header.state.dataOffset);
    const sums = decodeChecksums(meta.buf.subarray(checksumOffset(first), metaLength), last - first + 1);
    for (let b = first; b <= blockOf(end - 1); b++) {
      const from = b * BLOCK_SIZE - base;
      const to = Math.min(from + BLOCK_SIZE, size - base);
      if (data.length < to) throw new ChunkCorruptError(handle, b, 'the file is shorter than the chunk');
      if (sums[b - first] === MISSING_CHECKSUM || blockChecksum(data.subarray(from, to)) !== sums[b - first]) {
        throw new ChunkCorruptError(handle, b, 'data does not match its checksum');
      }
    }
    const bytes = data.subarray(offset - base, end - base);
    return blocks.pooled ? Buffer.from(bytes) : bytes; // a scratch buffer's bytes are copied out
  } finally {
    meta.release();
    blocks.release();
  }
}

/** Both results once both have settled; the first failure, if any. */
export async function settledBoth<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  await allDone([a, b]);
  return [await a, await b];
}

/**
 * Scratch buffers of readChunkFile, for the header and checksums and for the blocks of small
 * reads (a 4 KiB random read reads its whole 64 KiB block), and of the blocks small writes
 * cover in part: a fresh one per read made V8 collect garbage every few hundred reads.
 */
const metaScratch = new BufferPool(16 * 1024, 16);
const blockScratch = new BufferPool(2 * BLOCK_SIZE, 16);

/** `bytes` of scratch: from `pool` when they fit (release() gives it back), else fresh. */
function scratch(pool: BufferPool, bytes: number): { buf: Buffer; pooled: boolean; release: () => void } {
  if (bytes > pool.size) return { buf: Buffer.allocUnsafe(bytes), pooled: false, release: () => undefined };
  const whole = pool.take();
  return { buf: whole.subarray(0, bytes), pooled: true, release: () => pool.release(whole) };
}

/** The file system is full (or the owner's quota used up): no fault of the disk. */
export function isNoSpace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/**
 * Waits for every one of `work`, then throws the first failure: no write of an operation may
 * still be running when it fails (its lock is released, and a failed create removes its file).
 */
async function allDone(work: Array<Promise<unknown> | undefined>): Promise<void> {
  const failed = (await Promise.allSettled(work)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Up to `length` bytes from `position` (fewer at the end of the file). */
async function readAt(fh: FileIo, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  return buf.subarray(0, await readFully(fh, buf, position));
}

/** Makes creations and renames in `dir` durable. */
export function fsyncDir(dir: string): Promise<void> {
  return withFile(dir, 'r', (fh) => fh.sync());
}

export async function withFile<T>(file: string, flags: string, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
  const fh = await fs.promises.open(file, flags);
  try {
    return await fn(fh);
  } finally {
    await fh.close();
  }
}
