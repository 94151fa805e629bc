import { performance } from 'perf_hooks';
import * as fs from 'fs';
import * as path from 'path';
import { FsError, toFsError } from '../common/fs-error';
import { logger } from '../common/log';
import type { WriteRun } from '../common/data-stream-protocol';
import { SlowDiskGuard } from '../common/slow-disk';
import { blockCount } from './block-checksums';
import { ChunkCorruptError, ChunkFile, ChunkState, SMALL_WRITE_BYTES, VERIFY_BLOCKS_PER_STEP, capacityAt, chunkFilePath, isNewer, isNoSpace } from './chunk-file';
import { DataDir } from './data-dir';
import { DataDirs, StoreUsage } from './data-dirs';
import { KeyedMutex } from './keyed-mutex';
import { OpenChunkFiles } from './open-chunk-files';

/**
 * A chunkserver's local chunk storage over one or more data directories (the file format is in
 * chunk-file.ts, a directory's layout in data-dir.ts). It keeps a small in-memory index
 * (header and directory per chunk; checksums stay on disk, those of recently read chunks
 * also in memory with their files held open, see open-chunk-files.ts) and serialises the
 * mutations of one chunk while different chunks, and reads of one chunk, proceed in parallel.
 *
 * Arguments are checked before anything is touched: handles, versions, offsets, lengths and
 * sizes must be non-negative safe integers (EINVAL); a write or truncate ending past chunkSize
 * is EFBIG (the chunk would outgrow its maximum, like a write past a file-size limit); a read
 * ending past chunkSize is EINVAL (a malformed request: reads never grow anything). Unknown
 * handle: ENOENT; creating an existing one: EEXIST.
 *
 * Disk faults: an I/O error from a directory (EIO, EROFS, the directory gone, ...) takes the
 * whole directory out of service with an ALARM, drops its chunks from the index and reports
 * them through onChunksLost; the failing operation gets EIO (EROFS as such) and the other
 * directories keep serving. A periodic stat notices a directory removed while idle. A full file
 * system (ENOSPC, EDQUOT) is no fault: the operation fails with ENOSPC and the directory, with
 * every chunk on it, stays in service (new chunks go where there is room).
 * A checksum mismatch is not a disk fault: the chunk is listed by corrupt() until deleted.
 */
const log = logger('chunk-store');

/** Error codes that mean the directory's disk or file system is not usable. */
const DISK_FAULTS = new Set(['EIO', 'EROFS', 'ENOTDIR', 'EACCES', 'EPERM', 'EUCLEAN', 'ENXIO', 'ENODEV', 'ESTALE']);
const DEFAULT_HEALTH_CHECK_MS = 2000;
/** Chunks whose files are held open for reads and writes. */
const DEFAULT_OPEN_CHUNKS = 256;

export interface ChunkInfo {
  handle: number;
  version: number;
  /** Bytes. */
  size: number;
  /** The data directory holding it. */
  dir: string;
  /** performance.now() of the last create/read/write/truncate; -Infinity when untouched since the store opened. */
  lastAccessMs: number;
}

export type ChunksLostListener = (handles: number[], dir: string, error: FsError) => void;

export interface ChunkStoreOptions {
  /** Largest size a chunk may reach (bytes). */
  chunkSize: number;
  /** Chunks gone with their directory (or alone): tell the master at once. */
  onChunksLost?: ChunksLostListener;
  /** How often each directory is checked for having been removed (ms). */
  healthCheckMs?: number;
  /** How many recently read chunks keep their files open and checksums in memory. */
  openChunks?: number;
  /** Files made ahead of time per data directory for new chunks (spare-files.ts); 0: none. */
  spareFiles?: number;
}

export interface WriteOptions {
  /** Resolve only once data and checksums are on disk (fdatasync). Default true. */
  durable?: boolean;
}

export interface ChunkWriteOptions extends WriteOptions {
  /** The chunk does not exist: create it at this version with the data (always durable). */
  createAtVersion?: number;
}

interface IndexEntry {
  state: ChunkState;
  dir: DataDir;
  lastAccessMs: number;
}

export class ChunkStore {
  private readonly index = new Map<number, IndexEntry>();
  private readonly corruptHandles = new Set<number>();
  private readonly locks = new KeyedMutex<number>();
  private readonly open: OpenChunkFiles;
  private readonly dirs: DataDirs;
  private closed = false;
  /** Disk operations under way (onDisk): small work alone may block the event loop (see mayBlock). */
  private diskWork = 0;
  /** After slow small work (a create, a small write, a version change) the next does not block the event loop. */
  private readonly disk = new SlowDiskGuard();

  private constructor(
    dirs: DataDir[],
    readonly chunkSize: number,
    private readonly onChunksLost: ChunksLostListener,
    healthCheckMs: number,
    openChunks: number,
  ) {
    this.open = new OpenChunkFiles(openChunks, (file) => fs.promises.open(file, 'r+'));
    this.dirs = new DataDirs(dirs, (dir) => this.dropDirChunks(dir), healthCheckMs);
  }

  /** Opens (creating where missing) and scans the directories; fails only if none is usable. */
  static async open(dataDirs: string[], opts: ChunkStoreOptions): Promise<ChunkStore> {
    checkInteger('chunkSize', opts.chunkSize);
    const paths = dataDirs.map((p) => path.resolve(p));
    if (paths.length === 0 || opts.chunkSize === 0) throw new FsError('EINVAL', 'need a data directory and a positive chunk size');
    if (new Set(paths).size !== paths.length) throw new FsError('EINVAL', `a data directory is listed twice: ${paths.join(', ')}`);
    const dirs = paths.map((p) => new DataDir(p, opts.chunkSize, opts.spareFiles));
    const store = new ChunkStore(dirs, opts.chunkSize, opts.onChunksLost ?? (() => undefined), opts.healthCheckMs ?? DEFAULT_HEALTH_CHECK_MS, opts.openChunks ?? DEFAULT_OPEN_CHUNKS);
    const scans = await Promise.all(
      dirs.map(async (d) => {
        try {
          return await d.open();
        } catch (err) {
          store.dirs.fail(d, err);
          return [];
        }
      }),
    );
    if (!store.dirs.anyHealthy) {
      await store.close();
      throw new FsError('EIO', `no usable data directory: ${dirs.map((d) => `${d.path}: ${d.error}`).join('; ')}`);
    }
    // One directory under two paths (a symlink, a bind mount) would show each chunk twice, and
    // removing the "older" copy below would remove the only one.
    for (const [i, d] of dirs.entries()) {
      const twin = dirs.slice(0, i).find((e) => e.healthy && d.healthy && e.inode === d.inode);
      if (!twin) continue;
      await store.close();
      throw new FsError('EINVAL', `data directories ${twin.path} and ${d.path} are one directory`);
    }
    const older: string[] = [];
    scans.forEach((chunks, i) => chunks.forEach((c) => {
      const ignored = store.addScanned(c.handle, c.state, dirs[i]);
      if (ignored) older.push(chunkFilePath(ignored.path, c.handle));
    }));
    // An older copy is debris of a crash; left in place, it would mislead a reader of the files
    // beside the chunkserver (client/local-chunk-reads.ts). A crash undoing this just repeats it.
    await Promise.all(older.map((file) => fs.promises.unlink(file).catch((err: Error) => log.warn(`cannot remove the older copy ${file}: ${err.message}`))));
    log.info(`opened ${store.index.size} chunks in ${dirs.filter((d) => d.healthy).length}/${dirs.length} data directories`);
    return store;
  }

  /** Creates an empty chunk in the healthy directory with the most free space. */
  async create(handle: number, version: number): Promise<void> {
    return this.createChunk(handle, version, 0, Buffer.alloc(0));
  }

  async write(handle: number, offset: number, data: Buffer, opts: ChunkWriteOptions = {}): Promise<void> {
    if (!Buffer.isBuffer(data)) throw new FsError('EINVAL', 'write data must be a Buffer');
    this.checkRange('write', offset, data.length, 'EFBIG');
    const version = opts.createAtVersion;
    if (version !== undefined) return this.createChunk(handle, version, offset, data);
    return this.writeRuns(handle, [{ offset, length: data.length }], data, opts.durable ?? true);
  }

  /**
   * Runs of an existing chunk, `data` holding their bytes in turn, in offset order and disjoint
   * (data-stream-protocol.ts checks). One run syncs itself; several are written without a sync
   * and synced once after the last, so that a crash leaves what it may leave of one large write
   * (blocks that read as corruption, never as data).
   */
  async writeRuns(handle: number, runs: WriteRun[], data: Buffer, durable = true): Promise<void> {
    for (const r of runs) this.checkRange('write', r.offset, r.length, 'EFBIG');
    return this.withChunk(handle, async (file, entry) => {
      const last = runs[runs.length - 1];
      checkRoom(handle, entry, last.offset + last.length);
      const mayBlock = this.mayBlock(entry.dir);
      const one = runs.length === 1;
      const writeAll = (): Promise<void> => this.open.use(handle, file.path, async (open) => {
        let at = 0;
        for (const r of runs) {
          this.update(entry, await file.write(open, entry.state, r.offset, data.subarray(at, at + r.length), durable && one, mayBlock));
          at += r.length;
        }
        // On the main thread only as a small write's would be: a large batch's sync takes long.
        if (durable && !one) await file.sync(open, () => data.length <= SMALL_WRITE_BYTES && mayBlock());
      });
      try {
        await this.timedIfSmall(data, writeAll);
      } finally {
        this.open.dropChecksums(handle); // they changed (or may have, if the write failed)
      }
      entry.lastAccessMs = performance.now();
    });
  }

  /** Bytes [offset, offset + length), short at the end of the chunk; every block is verified. */
  async read(handle: number, offset: number, length: number): Promise<Buffer> {
    this.checkRange('read', offset, length, 'EINVAL');
    return this.withChunk(
      handle,
      (file, entry) => {
        entry.lastAccessMs = performance.now();
        return this.open.use(handle, file.path, (open) => file.read(open, entry.state, offset, length));
      },
      'shared',
    );
  }

  /** Shrinks or grows (with zeros) the chunk to `size` bytes. */
  async truncate(handle: number, size: number, opts: WriteOptions = {}): Promise<void> {
    checkInteger('truncate size', size);
    if (size > this.chunkSize) throw new FsError('EFBIG', `truncate to ${size} bytes passes the chunk size ${this.chunkSize}`);
    return this.withChunk(handle, async (file, entry) => {
      checkRoom(handle, entry, size);
      this.open.dropChecksums(handle);
      this.update(entry, await file.truncate(entry.state, size, opts.durable ?? true));
      entry.lastAccessMs = performance.now();
    });
  }

  /** Durably sets the version (the master bumps it when it grants a lease). */
  async setVersion(handle: number, version: number): Promise<void> {
    checkInteger('version', version);
    return this.withChunk(handle, async (file, entry) => {
      const mayBlock = this.mayBlock(entry.dir);
      this.update(entry, await this.disk.timed(() => this.open.use(handle, file.path, (open) => file.setVersion(open, entry.state, version, mayBlock))));
    });
  }

  async delete(handle: number): Promise<void> {
    return this.withChunk(handle, async (file, entry) => {
      await file.remove();
      this.removeEntry(handle, entry);
      log.debug(`deleted chunk ${handle} from ${entry.dir.path}`);
    });
  }

  has(handle: number): boolean {
    return this.index.has(handle);
  }

  info(handle: number): ChunkInfo {
    checkInteger('handle', handle);
    const entry = this.index.get(handle);
    if (!entry) throw new FsError('ENOENT', `chunk ${handle} not found`);
    return toInfo(handle, entry);
  }

  list(): ChunkInfo[] {
    return [...this.index].map(([handle, entry]) => toInfo(handle, entry));
  }

  /** Chunks found corrupt (by a read, a write or verify) and not deleted since. */
  corrupt(): number[] {
    return [...this.corruptHandles];
  }

  /**
   * Checks every block of the chunk; false (and the chunk listed as corrupt) on a mismatch.
   * Works a few blocks at a time so foreground operations on the chunk wait little.
   */
  async verify(handle: number): Promise<boolean> {
    try {
      for (let first = 0; await this.verifyStep(handle, first); first += VERIFY_BLOCKS_PER_STEP);
      return true;
    } catch (err) {
      if (err instanceof ChunkCorruptError) return false;
      throw err;
    }
  }

  usage(): Promise<StoreUsage> {
    return this.dirs.usage();
  }

  /** The healthy data directories (absolute paths). */
  healthyDirs(): string[] {
    return this.dirs.all.filter((d) => d.healthy).map((d) => d.path);
  }

  /** Stops the health checks and waits for operations in flight; later calls get EIO. */
  async close(): Promise<void> {
    this.closed = true;
    this.dirs.close();
    await Promise.all([this.locks.idle(), ...this.dirs.all.map((d) => d.spares.close())]);
    this.open.forgetAll();
  }

  /** Verifies from the files on disk (not checksums in memory): the scrubber checks the disk. */
  private verifyStep(handle: number, first: number): Promise<boolean> {
    return this.withChunk(
      handle,
      async (file, entry) => {
        const count = blockCount(entry.state.size);
        await file.verifyBlocks(entry.state, first, Math.min(first + VERIFY_BLOCKS_PER_STEP, count) - 1);
        return first + VERIFY_BLOCKS_PER_STEP < count;
      },
      'shared',
    );
  }

  /**
   * Creates a chunk that does not exist yet, holding `data` at `offset`, in the healthy
   * directory with the most free space (in one of its spares, if it has one ready), under its
   * lock, with disk faults handled; its file stays open.
   */
  private createChunk(handle: number, version: number, offset: number, data: Buffer): Promise<void> {
    checkInteger('handle', handle);
    checkInteger('version', version);
    return this.locks.run(handle, async () => {
      this.checkOpen();
      if (this.index.has(handle)) throw new FsError('EEXIST', `chunk ${handle} already exists`);
      // A directory failing during the create is out of service now, one found full is left
      // out: try the next one.
      const full = new Set<DataDir>();
      for (;;) {
        const dir = await this.dirs.roomiest(full);
        const file = new ChunkFile(dir.path, handle);
        let state: ChunkState;
        // A file held open for an earlier chunk of this handle is not this one's.
        this.open.forget(handle);
        try {
          state = await this.onDisk(dir, null, async () => {
            const created = await this.timedIfSmall(data, () => file.create(version, dir.dataOffset, offset, data, dir.spares.take(), this.mayBlock(dir)));
            this.open.adopt(handle, file.path, created.fh);
            return created.state;
          });
        } catch (err) {
          this.open.forget(handle); // closes a file the create opened in a directory failing meanwhile
          if (!dir.healthy) continue;
          if (err instanceof FsError && err.code === 'ENOSPC') {
            this.dirs.noteFull(dir); // its free space said otherwise (a quota, or a second-old figure)
            full.add(dir);
            continue;
          }
          throw err;
        }
        this.addEntry(handle, { state, dir, lastAccessMs: performance.now() });
        log.debug(`created chunk ${handle} v${version} (${state.size} bytes) in ${dir.path}`);
        return;
      }
    });
  }

  /**
   * `work` writing `data`, timed by the slow-disk guard when it is small: only small work may
   * block the event loop, and a slow one must stop that (a large piece through the pool is
   * expected to take longer).
   */
  private timedIfSmall<T>(data: Buffer, work: () => Promise<T>): Promise<T> {
    return data.length <= SMALL_WRITE_BYTES ? this.disk.timed(work) : work();
  }

  /**
   * Whether small disk work in `dir` may be done on the main thread, asked when it would block:
   * nothing else is on the disk, not even a round of new spares (its syncs commit the journal),
   * and the last such work was quick.
   */
  private mayBlock(dir: DataDir): () => boolean {
    return () => this.diskWork === 1 && this.disk.quick && !dir.spares.making;
  }

  /**
   * Runs `fn` on an existing chunk under its lock (shared by operations that change nothing),
   * with disk faults handled.
   */
  private withChunk<T>(handle: number, fn: (file: ChunkFile, entry: IndexEntry) => Promise<T>, mode: 'exclusive' | 'shared' = 'exclusive'): Promise<T> {
    checkInteger('handle', handle);
    const task = (): Promise<T> => {
      this.checkOpen();
      const entry = this.index.get(handle);
      if (!entry) throw new FsError('ENOENT', `chunk ${handle} not found`);
      return this.onDisk(entry.dir, handle, () => fn(new ChunkFile(entry.dir.path, handle), entry));
    };
    return mode === 'shared' ? this.locks.runShared(handle, task) : this.locks.run(handle, task);
  }

  /** Runs disk work in `dir`; whatever goes wrong comes out as an FsError, faults handled. */
  private async onDisk<T>(dir: DataDir, handle: number | null, work: () => Promise<T>): Promise<T> {
    let result: T;
    this.diskWork++;
    try {
      result = await work();
    } catch (err) {
      throw await this.toStoreError(dir, handle, err);
    } finally {
      this.diskWork--;
    }
    // Work that raced with the directory's failure may have "succeeded" on removed files.
    if (!dir.healthy) throw new FsError('EIO', `data directory ${dir.path} failed: ${dir.error}`);
    return result;
  }

  private async toStoreError(dir: DataDir, handle: number | null, err: unknown): Promise<FsError> {
    if (err instanceof ChunkCorruptError) {
      this.markCorrupt(err);
      return err;
    }
    if (err instanceof FsError) return err;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const message = err instanceof Error ? err.message : String(err);
    if (code === 'ENOENT') {
      // Either the directory went away (fault) or only this chunk's files did (chunk lost).
      const gone = await dir.checkStillThere().then(() => null, (e: unknown) => e);
      // (With no chunk at stake, e.g. a create, a missing fan-out directory is damage to the directory.)
      if (!gone && handle !== null && this.index.get(handle)?.dir === dir) {
        const lost = new FsError('EIO', `files of chunk ${handle} vanished from ${dir.path}: ${message}`);
        log.error(`ALARM: ${lost.message}`);
        this.dropChunks([handle], dir, lost);
        return lost;
      }
    } else if (isNoSpace(err)) {
      return new FsError('ENOSPC', `data directory ${dir.path} is full: ${message}`);
    } else if (!DISK_FAULTS.has(code)) {
      log.error(`unexpected error in data directory ${dir.path}: ${message}`);
      return toFsError(err);
    }
    this.dirs.fail(dir, err);
    return new FsError(code === 'EROFS' ? code : 'EIO', `data directory ${dir.path} failed: ${message}`);
  }

  /** The directory is out of service: its chunks are lost. */
  private dropDirChunks(dir: DataDir): void {
    void dir.spares.close();
    const lost = [...this.index].filter(([, e]) => e.dir === dir).map(([handle]) => handle);
    if (lost.length > 0) log.error(`${lost.length} chunks lost with data directory ${dir.path}`);
    this.dropChunks(lost, dir, new FsError('EIO', `data directory ${dir.path} failed: ${dir.error}`));
  }

  private dropChunks(handles: number[], dir: DataDir, error: FsError): void {
    for (const h of handles) this.removeEntry(h, this.index.get(h)!);
    if (handles.length === 0) return;
    try {
      this.onChunksLost(handles, dir.path, error);
    } catch (err) {
      log.error(`onChunksLost listener threw: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private markCorrupt(err: ChunkCorruptError): void {
    if (!this.index.has(err.handle) || this.corruptHandles.has(err.handle)) return;
    this.corruptHandles.add(err.handle);
    log.error(`chunk ${err.handle} is corrupt: ${err.message}`);
  }

  /** Indexes a chunk found by the scan; of two copies in different directories the newer wins, and the older's directory is returned. */
  private addScanned(handle: number, state: ChunkState, dir: DataDir): DataDir | null {
    const other = this.index.get(handle);
    if (other) {
      const [kept, ignored] = isNewer(state, other.state) ? [dir, other.dir] : [other.dir, dir];
      log.warn(`chunk ${handle} is in ${other.dir.path} and ${dir.path}: removing the older copy in ${ignored.path}`);
      if (kept === other.dir) return ignored;
      this.removeEntry(handle, other);
    }
    this.addEntry(handle, { state, dir, lastAccessMs: -Infinity });
    return other ? other.dir : null;
  }

  private addEntry(handle: number, entry: IndexEntry): void {
    this.index.set(handle, entry);
    entry.dir.chunks++;
    entry.dir.usedBytes += entry.state.size;
  }

  private removeEntry(handle: number, entry: IndexEntry): void {
    this.index.delete(handle);
    this.open.forget(handle);
    this.corruptHandles.delete(handle);
    entry.dir.chunks--;
    entry.dir.usedBytes -= entry.state.size;
  }

  private update(entry: IndexEntry, state: ChunkState): void {
    entry.dir.usedBytes += state.size - entry.state.size;
    entry.state = state;
  }

  private checkRange(op: string, offset: number, length: number, pastChunk: 'EFBIG' | 'EINVAL'): void {
    checkInteger(`${op} offset`, offset);
    checkInteger(`${op} length`, length);
    if (offset + length > this.chunkSize) {
      throw new FsError(pastChunk, `${op} of bytes [${offset}, ${offset + length}) passes the chunk size ${this.chunkSize}`);
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new FsError('EIO', 'chunk store is closed');
  }
}

function checkInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new FsError('EINVAL', `${name} must be a non-negative integer, got ${value}`);
}

/** EFBIG past what the chunk's file has checksum room for (a chunk made under a smaller chunkSize). */
function checkRoom(handle: number, entry: IndexEntry, end: number): void {
  const room = capacityAt(entry.state.dataOffset);
  if (end > room) throw new FsError('EFBIG', `chunk ${handle} holds at most ${room} bytes (it was made for smaller chunks)`);
}

function toInfo(handle: number, e: IndexEntry): ChunkInfo {
  return { handle, version: e.state.version, size: e.state.size, dir: e.dir.path, lastAccessMs: e.lastAccessMs };
}
