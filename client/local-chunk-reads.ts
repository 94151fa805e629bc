import { performance } from 'perf_hooks';
import * as fs from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import type { LocalChunkDirs__Output } from '../generated/chunkfs/chunkserver/LocalChunkDirs';
import { CHUNKS_SUBDIR, checkLinked, chunkFilePath, dataOffsetFor, readChunkFile, settledBoth } from '../server/chunkserver/chunk-file';
import { blockingIo, threadedIo, type FileIo } from '../server/chunkserver/direct-io';
import { OpenChunkFiles, type HeldFile, type Opener } from '../server/chunkserver/open-chunk-files';
import { bootId, dirIdentity } from '../server/common/host-identity';
import { SlowDiskGuard } from '../server/common/slow-disk';

/** Chunk files held open at once. */
const OPEN_FILES = 256;
/**
 * A file unused this long (ms) is closed: a chunk deleted meanwhile must not keep its disk
 * space (the chunkserver deletes a removed file's chunks a --gc-delay after, 60 s by default).
 */
const IDLE_CLOSE_MS = 10_000;
/**
 * How often (ms) a file in use is checked for having been unlinked (a replica deleted, or
 * replaced by a new file): an fstat per read cost as much as the read. Meanwhile the version
 * and checksums still vouch for every byte served.
 */
const LINK_CHECK_MS = 1000;
/**
 * Where a chunk file's data is expected to start, read beside its header: right for every
 * chunk size up to 64 MiB (the default); a chunk laid out otherwise costs a second read.
 */
const EXPECTED_DATA_OFFSET = dataOffsetFor(64 * 1024 * 1024);
/** Reads up to this size may be made on the main thread (see read). */
const BLOCKING_READ_BYTES = 128 * 1024;

/**
 * Short-circuit reads, as HDFS's BlockReaderLocal: a client on a chunkserver's host reads that
 * chunkserver's chunk files itself (a pread of header, checksums and data, verified here),
 * instead of asking it over a socket: two process wake-ups and a copy less per read, which is
 * most of a small read's time. Only where the client provably sees the chunkserver's data
 * directories (same kernel, same directory at the path: host-identity.ts), and only for the
 * version the master named.
 *
 * Anything unexpected declines (null): the caller then reads through the chunkserver, which
 * orders reads with writes and reports corruption. A local reader never reports it, since what
 * looks like corruption here may be a write half done.
 */
export class LocalChunkReads {
  /** Keyed by path: several chunkservers here may hold the same chunk, each in its own file. */
  private readonly files = new OpenChunkFiles<string, HeldFile>(OPEN_FILES, openThreaded);
  /** Data directories whose chunk files this process may not open. */
  private readonly denied = new Set<string>();
  private readonly kernel = bootId();
  /** Closes idle files while any are held (started by a read, stopped by close). */
  private sweeper: NodeJS.Timeout | null = null;
  /** When each file held open was last found still linked (performance.now()). */
  private readonly linkedAt = new Map<string, number>();
  /** Reads under way, either way. */
  private reading = 0;
  /** Per data directory: after a slow small read there, the next go through the thread pool until one is quick again. */
  private readonly disks = new Map<string, SlowDiskGuard>();
  /** Reads served from the files (of them, made on the main thread), and declined (to be read through the chunkserver). */
  readonly stats = { served: 0, blocking: 0, declined: 0 };

  /**
   * The data directories of `local` that this process sees as the chunkserver does and may
   * read ([] when on another host, or running as a user the chunkserver's files shut out).
   */
  async visibleDirs(local: LocalChunkDirs__Output | null): Promise<string[]> {
    if (!local || local.bootId === '' || local.bootId !== (await this.kernel)) return [];
    const usable = await Promise.all(local.dirs.map(async (d) => !this.denied.has(d.path) && (await dirIdentity(d.path)) === d.identity && (await readable(d.path))));
    return local.dirs.filter((_d, i) => usable[i]).map((d) => d.path);
  }

  /** What ChunkClient.read answers, from the chunk's file in one of `dirs`; null to ask the chunkserver. */
  async read(dirs: readonly string[], handle: number, version: number, offset: number, length: number): Promise<Buffer | null> {
    this.sweeper ??= setInterval(() => this.sweep(), IDLE_CLOSE_MS / 2).unref();
    const files = dirs.filter((d) => !this.denied.has(d)).map((dir) => ({ dir, file: chunkFilePath(dir, handle) }));
    // The file held open first: with several directories, the chunk is in one.
    files.sort((a, b) => Number(this.files.holds(b.file)) - Number(this.files.holds(a.file)));
    // A small read alone is made on the main thread: through the thread pool its open, reads
    // and fstat each cost two thread wake-ups, more than the calls themselves on this kind of
    // machine. After one that was slow (a busy disk) the next in that directory go through the
    // thread pool, which times them: a stalled disk blocks the loop for one read, not read after read.
    const small = length <= BLOCKING_READ_BYTES;
    for (const { dir, file } of files) {
      let disk = this.disks.get(dir);
      if (!disk) this.disks.set(dir, (disk = new SlowDiskGuard()));
      const blocking = small && this.reading === 0 && disk.quick;
      const read = (): Promise<Buffer> => this.files.use(file, file, async (open) => {
        const io = blocking ? blockingIo(open.fh.fd) : threadedIo(open.fh.fd);
        // Both settle before the file may be let go: a plain descriptor closed under a call
        // still in the thread pool could be reused by the next open.
        const [bytes] = await settledBoth(readChunkFile(io, file, handle, version, offset, length, EXPECTED_DATA_OFFSET), this.checkLinked(io, file));
        return bytes;
      }, blocking ? openBlocking : openThreaded);
      this.reading++;
      try {
        const data = await (small ? disk.timed(read) : read());
        this.stats.served++;
        if (blocking) this.stats.blocking++;
        return data;
      } catch (err) {
        // Not in this directory, another version, a write under way, corruption: the file is
        // let go (use() forgets it), and the chunkserver answers unless another directory does.
        // Files this process may not open are not tried again.
        if ((err as NodeJS.ErrnoException).code === 'EACCES') this.denied.add(dir);
      } finally {
        this.reading--;
      }
    }
    this.stats.declined++;
    return null;
  }

  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    this.files.forgetAll();
    this.linkedAt.clear();
  }

  /** Fails (ENOENT) when `fh` has been unlinked, checking once per LINK_CHECK_MS per file. */
  private async checkLinked(fh: FileIo, file: string): Promise<void> {
    const now = performance.now();
    if (now - (this.linkedAt.get(file) ?? -Infinity) < LINK_CHECK_MS) return;
    this.linkedAt.delete(file); // a failed check is made again next time
    await checkLinked(fh, file);
    this.linkedAt.set(file, now);
  }

  private sweep(): void {
    this.files.forgetUnused(IDLE_CLOSE_MS);
    for (const [file, at] of this.linkedAt) if (performance.now() - at > IDLE_CLOSE_MS) this.linkedAt.delete(file);
  }
}

const openAsync = promisify(fs.open);
const closeAsync = promisify(fs.close);
/** A chunk file, opened for reading with a blocking call. */
const openBlocking: Opener<HeldFile> = async (file) => descriptor(fs.openSync(file, 'r'));
/** A chunk file, opened for reading through the thread pool. */
const openThreaded: Opener<HeldFile> = async (file) => descriptor(await openAsync(file, 'r'));
/**
 * Closed through the thread pool: the last close of a chunk file the chunkserver has deleted
 * frees its blocks, disk work the event loop must not wait for.
 */
const descriptor = (fd: number): HeldFile => ({ fd, close: () => closeAsync(fd) });

/** Whether this process may list and read the chunk files under data directory `dir`. */
function readable(dir: string): Promise<boolean> {
  return fs.promises.access(path.join(dir, CHUNKS_SUBDIR), fs.constants.R_OK | fs.constants.X_OK).then(() => true, () => false);
}
