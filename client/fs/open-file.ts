import { performance } from 'perf_hooks';
import { FsError, toFsError } from '../../server/common/fs-error';
import type { Attr } from '../../server/master/inode';
import type { AttrChanges } from '../../server/master/mutation';
import { MAX_CHUNK_IO_BYTES } from '../../server/common/proto';
import type { ChunkClientPool } from '../chunk-client';
import { FileReader } from '../file-reader';
import { FileWriter } from '../file-writer';
import type { ChunkAllocation, MasterClient } from '../master-client';
import { ChunkLocations, type LocationWindow } from './chunk-locations';
import { copiesIn, type Run, WriteBuffer } from './write-buffer';
import { byCurrentName, type Relocatable } from './renamed-retry';
import type { BufferPool } from '../../server/common/buffer-pool';

/** Times set by utimens(2), ms since the epoch. */
export type FileTimes = Pick<AttrChanges, 'atimeMs' | 'mtimeMs'>;

/** How long a read waits for the master to learn where a chunk's replicas are (ms). */
const NO_REPLICA_WAIT_MS = 10_000;
const NO_REPLICA_PAUSE_MS = 250;

/** Tuning of open files (see MountOptions for what a user may set). */
export interface OpenFileTuning {
  /** Dirty bytes per file that start a background flush to the chunkservers. */
  writeBufferBytes: number;
  /** Bytes fetched ahead of the reader once reads are sequential (the read-ahead window). */
  readAheadBytes: number;
}

/** Flushes of write buffers in progress at once: the next buffer fills while two are sent. */
const MAX_FLIGHTS = 2;
/**
 * Extents a buffer holds before it is sent. Those in one chunk go as one write, synced once on
 * every replica (FileWriter.writeRuns); scattered over many chunks, each is a durable write of
 * its own (a few ms), so they must not pile up into a flush that holds the next write(2) back
 * for seconds (stress-ng --revio's writes timed out).
 */
const MAX_BUFFERED_EXTENTS = 128;

/** A flush in progress: the file ranges it writes, and its completion. */
interface Flight {
  ranges: Array<[number, number]>;
  done: Promise<void>;
}

/** File bytes [offset, end) held in memory for reads (possibly still arriving). */
interface Span {
  offset: number;
  end: number;
  data: Promise<Buffer>;
}

/**
 * One open regular file of a mount, shared by every handle open on the same path (so that a
 * read sees what any handle of this mount wrote). It buffers writes (flushed in the background
 * once a buffer fills, and wholly on flush/fsync/close), and reads ahead when reads are
 * sequential. Data leave through FileWriter: a flush returning means every replica has the
 * bytes durably. A background flush that fails is reported by the next write or flush, like a
 * local file system's write-back error.
 */
export class OpenFile implements Relocatable {
  handles = 0;
  /** The size as this mount sees it: the master's at open, then grown by writes. */
  size: number;
  private readonly writer: FileWriter;
  private readonly reader: FileReader;
  private readonly locations: ChunkLocations;
  private readonly dirty: WriteBuffer;
  /** Buffers taken for a flush and waiting for a free slot (see startFlush). */
  private queued = 0;
  private dispatch: Promise<void> = Promise.resolve();
  private readonly flights = new Set<Flight>();
  /** The runs of every buffer taken for a flush (queued or in flight) until its flight ends, oldest first. */
  private readonly sending = new Set<Run[]>();
  /** The last write that failed in the background, and how many have (see failureSince). */
  private lastFailure: FsError | null = null;
  private failureCount = 0;
  /**
   * The size the master has recorded, or is being told (what a flush that writes past it
   * extends); 0 once unknown (a record or truncate failed: the next end is recorded again).
   */
  private masterSize: number;
  /** Time of the last write, given to the master as mtime when a flush only overwrote. */
  private lastWriteMs = 0;
  private mtimePending = false;
  /** Times to set with the next record of the file's end (see setTimes), and that record once sent. */
  private timesAtEnd: FileTimes | null = null;
  private timesRecorded: Promise<Attr> | null = null;
  /** A relocate() under way. */
  private relocating: Promise<void> | null = null;
  /** Why relocate() found no name for the file: it was removed by another client. */
  private gone: FsError | null = null;
  /** The span the reader is in. */
  private cache: Span | null = null;
  /** Spans after it, in order, fetched ahead of the reader (while reads are sequential). */
  private ahead: Span[] = [];
  /** Where the last read ended: a read starting there is sequential. */
  private lastReadEnd = -1;
  /** Bytes read one after another up to the last read's end (its own included). */
  private streak = 0;

  constructor(
    private readonly master: MasterClient,
    peers: ChunkClientPool,
    public path: string,
    /** The file's inode: the master refuses a call by a path that names another file by then. */
    readonly ino: number,
    size: number,
    private readonly tuning: OpenFileTuning,
    /** Slabs of tuning.writeBufferBytes for the write buffer (shared by the mount's files). */
    slabs: BufferPool,
    chunkSize: number,
    /** Called whenever a flush or truncate may have changed what the master has (size, mtime). */
    private readonly changed: () => void,
    /** Called when relocate() found the file under another name than `from`. */
    private readonly moved: (from: string) => void,
  ) {
    this.size = size;
    this.masterSize = size;
    this.dirty = new WriteBuffer(slabs);
    this.writer = new FileWriter(master, peers, chunkSize);
    this.reader = new FileReader(master, peers);
    this.locations = new ChunkLocations(master, this);
  }

  /** True while bytes written here have not reached the master's view of the file. */
  get unflushed(): boolean {
    return !this.dirty.empty || this.queued > 0 || this.flights.size > 0 || this.mtimePending;
  }

  get mtimeMs(): number {
    return this.lastWriteMs;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    this.dropData(); // locations stay: the flush that lands the bytes forgets them
    this.dirty.add(offset, data);
    this.size = Math.max(this.size, offset + data.length);
    this.lastWriteMs = Date.now();
    this.mtimePending = true;
    if (this.dirty.bytes >= this.tuning.writeBufferBytes || this.dirty.extentCount >= MAX_BUFFERED_EXTENTS) await this.startFlush();
  }

  /**
   * Everything written so far sent, and what landed durable on every replica and recorded by
   * the master. A write that failed is not thrown here: each handle learns of it once, from its
   * close or fsync (see failureSince).
   */
  async flush(): Promise<void> {
    await this.flushWithTimes(null);
  }

  /** Background writes that have failed so far: a handle opened now starts from here. */
  get failures(): number {
    return this.failureCount;
  }

  /**
   * The error to report to a handle that has seen `seen` failures (the count at its open or
   * its last report), or null when none came since: as Linux reports a writeback error once to
   * each file description open when it happened (errseq), so that a reader's read or another
   * handle's close never takes a writer's error away from it.
   */
  failureSince(seen: number): FsError | null {
    if (this.failureCount <= seen || !this.lastFailure) return null;
    return new FsError(this.lastFailure.code, `writing ${this.path} failed: ${this.lastFailure.message}`);
  }

  /**
   * flush(), then `times` set (utimens of a file with buffered writes: the data landing later
   * would stamp its own mtime over them). They ride on the record of the file's new end when
   * the flush sends one (tar and cp -p set times just before close: one master call, not two);
   * answers the master's attributes afterwards.
   */
  async setTimes(times: FileTimes): Promise<Attr> {
    return (await this.flushWithTimes(times))!;
  }

  private async flushWithTimes(times: FileTimes | null): Promise<Attr | null> {
    if (times) this.timesAtEnd = times;
    const failures = this.failureCount;
    try {
      await this.startFlush();
      await Promise.all([...this.flights].map((f) => f.done));
      // Something did not land: the caller reports it (failureSince), and mtime waits for a
      // flush that lands rather than a call that would delay the report by its deadline. Times
      // asked for (utimens) are set all the same.
      const landed = this.failureCount === failures;
      if (!landed && !times) return null;
      const recorded = times && this.timesRecorded;
      if (recorded) return await recorded;
      if (!this.mtimePending && !times) return null;
      const mtime = this.mtimePending && landed ? { mtimeMs: this.lastWriteMs } : {};
      if (landed) this.mtimePending = false;
      return await this.setattr({ ...mtime, ...times }).finally(this.changed);
    } finally {
      if (times) {
        this.timesAtEnd = null;
        this.timesRecorded = null;
      }
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const end = Math.min(offset + length, this.size);
    if (offset >= end) return Buffer.alloc(0);
    // This mount's writes are visible to its reads without waiting for them to land (a flush is
    // a durable write on every replica: mixed reads and writes, mmap and a database's pages would
    // wait for one after another). What has not landed yet, being flushed or still buffered, is
    // copied now and laid over what the chunkservers answer: the read sees every write that
    // returned before it, whenever the flights land meanwhile.
    const unlanded = this.unlandedIn(offset, end);
    let used = this.spansCovering(offset, end);
    const sequential = offset === this.lastReadEnd || used !== null;
    this.lastReadEnd = end;
    this.streak = sequential ? this.streak + (end - offset) : end - offset;
    if (used === null) {
      this.ahead = []; // not where the reader is going
      const want = sequential ? Math.max(end - offset, Math.min(this.readAheadPiece, this.streak)) : end - offset;
      used = [this.fetch(offset, Math.min(offset + want, this.size))];
    }
    // The reader has moved on to the last span used: earlier ones are dropped.
    const last = used[used.length - 1];
    this.ahead = this.ahead.slice(this.ahead.indexOf(last) + 1);
    this.cache = last;
    if (sequential) this.readAhead();
    try {
      const parts = await Promise.all(used.map(async (span) =>
        (await span.data).subarray(Math.max(offset, span.offset) - span.offset, Math.min(end, span.end) - span.offset)));
      if (unlanded.length === 0) return parts.length === 1 ? parts[0] : Buffer.concat(parts);
      const out = Buffer.concat(parts); // a copy: the spans stay as the chunkservers have the file
      for (const run of unlanded) run.data.copy(out, run.offset - offset);
      return out;
    } catch (err) {
      if (this.cache === last) this.dropData();
      throw err;
    }
  }

  /**
   * Copies of the bytes in [offset, end) written here that may not have landed: being flushed
   * (oldest flush first), then buffered (in write order), so that laid over in turn the latest
   * write wins. Held spans hold what the chunkservers had: a flight's landing drops them.
   */
  private unlandedIn(offset: number, end: number): Run[] {
    if (this.sending.size === 0 && this.dirty.empty) return [];
    const runs: Run[] = [];
    for (const taken of this.sending) runs.push(...copiesIn(taken, offset, end));
    runs.push(...this.dirty.copiesIn(offset, end));
    return runs;
  }

  /** The held spans (current and read ahead) that together cover [offset, end), or null. */
  private spansCovering(offset: number, end: number): Span[] | null {
    const spans = this.cache ? [this.cache, ...this.ahead] : this.ahead;
    const first = spans.findIndex((s) => s.offset <= offset && offset < s.end);
    if (first < 0) return null;
    let last = first;
    while (spans[last].end < end && last + 1 < spans.length && spans[last + 1].offset === spans[last].end) last++;
    return spans[last].end >= end ? spans.slice(first, last + 1) : null;
  }

  /**
   * Keeps pieces of the file after the current span in flight, up to the read-ahead window:
   * several at once, from different replicas, so that the reader does not wait for each piece's
   * round trip in turn. The window grows with the run of reads one after another (twice its
   * bytes), as the kernel's does: two pages read in a row (an mmap'd page's fault, the next
   * page's) fetch a few pages more, not 16 MiB that the next write drops again.
   */
  private readAhead(): void {
    const window = Math.min(this.tuning.readAheadBytes, 2 * this.streak);
    const piece = Math.min(this.readAheadPiece, window);
    const until = Math.min(this.cache!.offset + window, this.size);
    let at = (this.ahead[this.ahead.length - 1] ?? this.cache!).end;
    while (at < until) {
      const span = this.fetch(at, Math.min(at + piece, this.size));
      this.ahead.push(span);
      at = span.end;
    }
  }

  /** Bytes per read-ahead request: a quarter of the window, so that four are in flight. */
  private get readAheadPiece(): number {
    return Math.min(MAX_CHUNK_IO_BYTES, Math.max(64 * 1024, Math.ceil(this.tuning.readAheadBytes / 4)));
  }

  /**
   * fallocate(2): the file reaches at least `end` (0: its size stays) and its mtime and ctime
   * move, as on a local disk. Grow-only like the record of a write's end, so neither buffered
   * writes nor a larger size another mount recorded meanwhile are cut; nothing is flushed.
   */
  async allocate(end: number): Promise<void> {
    const now = Date.now();
    this.lastWriteMs = now; // a flush of earlier writes must not set mtime back
    const grows = end > this.size;
    try {
      await this.setattr(grows ? { size: end, growOnly: true, mtimeMs: now } : { mtimeMs: now }).finally(this.changed);
    } catch (err) {
      if (grows) this.masterSize = 0; // recorded or not, nobody knows
      throw err;
    }
    if (!grows) return;
    this.size = Math.max(this.size, end);
    this.masterSize = Math.max(this.masterSize, end);
  }

  /** truncate(2) through this open file: buffered writes first, then the cut. */
  async truncate(size: number): Promise<void> {
    await this.flush();
    this.dropReadCache();
    try {
      await byCurrentName(this, () => this.writer.truncate(this, size)).finally(this.changed);
    } catch (err) {
      this.masterSize = 0; // the cut may have been made or not
      throw err;
    }
    this.size = size;
    this.masterSize = size;
  }

  /**
   * The last handle closed: leases go back to the master. A write that failed is thrown (for
   * the log; the handles have been told at their close).
   */
  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.writer.close();
    }
    const failed = this.failureSince(0);
    if (failed) throw failed;
  }

  /** The first chunk, allocated with the file's create (see FileWriter.adoptAllocation). */
  adoptAllocation(allocated: ChunkAllocation): void {
    this.writer.adoptAllocation(this, allocated);
  }

  /**
   * Starts reading the file whole when it fits in one read-ahead piece (a small file opened
   * for reading): its first read then finds the bytes on their way instead of asking only
   * once the kernel has answered the open and sent the read.
   */
  prefetchSmall(): void {
    if (this.cache || this.size === 0 || this.size > this.readAheadPiece || this.unflushed) return;
    // Started once this turn is over, with the open answered: a small read from a chunk file
    // here blocks the event loop (client/local-chunk-reads.ts), and its disk time then overlaps
    // the caller's wake-up and read instead of delaying the open's answer.
    this.cache = this.fetch(0, this.size, new Promise((resolve) => setImmediate(resolve)));
  }

  /** Chunk locations fetched with the open (see ChunkLocations.seed). */
  seedLocations(window: LocationWindow): void {
    this.locations.seed(window);
  }

  /** Forgets cached chunk locations and data (another mount may have changed the file). */
  dropReadCache(): void {
    this.dropData();
    this.locations.invalidate();
  }

  private dropData(): void {
    this.cache = null;
    this.ahead = [];
  }

  /**
   * Sends the buffer in the background once a flight slot is free: at most MAX_FLIGHTS at once,
   * and never beside a flight whose ranges overlap (overlapping writes must land in order).
   * Resolves when the flight has started (a writer waiting here is held back).
   */
  private startFlush(): Promise<void> {
    if (this.dirty.empty) return this.dispatch;
    const taken = this.dirty.take();
    const ranges = taken.extents.map(({ offset, data }): [number, number] => [offset, offset + data.length]);
    this.queued++;
    this.sending.add(taken.extents);
    this.dispatch = this.dispatch.then(async () => {
      while (this.flights.size >= MAX_FLIGHTS || [...this.flights].some((f) => overlap(f.ranges, ranges))) {
        await Promise.race([...this.flights].map((f) => f.done));
      }
      this.queued--;
      const flight: Flight = {
        ranges,
        done: this.writeExtents(taken.extents)
          .catch((err) => {
            this.lastFailure = toFsError(err);
            this.failureCount++;
          })
          .finally(() => {
            this.sending.delete(taken.extents); // before its slabs go back to the pool
            taken.release();
            this.flights.delete(flight);
            this.changed();
          }),
      };
      this.flights.add(flight);
    });
    return this.dispatch;
  }

  private async writeExtents(extents: Run[]): Promise<void> {
    try {
      await this.writer.writeRuns(this, extents, (end) => this.recordEnd(end));
    } finally {
      this.locations.invalidate(); // new chunks, new versions
      // Spans fetched while these bytes were on their way may hold what was there before them:
      // reads laid the bytes over them until now (see unlandedIn), and will not from now on.
      this.dropData();
    }
  }

  /**
   * Tells the master the file reaches `end` (once the bytes before it are written), unless it
   * knows a size at least as large. Grow-only: flights landing out of order never shrink the
   * file, nor drop a chunk another flight has just allocated past the size this one records.
   */
  private recordEnd(end: number): Promise<unknown> | undefined {
    if (end <= this.masterSize) return undefined;
    this.masterSize = end;
    this.mtimePending = false; // the master sets mtime with the size
    // Times asked for go with the record of the whole file (no later record can follow it).
    const times = end === this.size ? this.timesAtEnd : null;
    const record = this.setattr({ size: end, growOnly: true, ...times });
    if (times) {
      this.timesAtEnd = null;
      this.timesRecorded = record;
    }
    record.catch(() => {
      // Recorded or not, nobody knows: the next end is recorded again, and mtime with it.
      this.masterSize = 0;
      this.mtimePending = true;
    });
    return record;
  }

  /** setattr(2) of this file, by its name now. */
  private setattr(changes: AttrChanges): Promise<Attr> {
    return byCurrentName(this, () => this.master.setattr(this.path, changes, this.ino));
  }

  /** True once relocate() found no name for the file: another client removed it. */
  get removed(): boolean {
    return this.gone !== null;
  }

  /**
   * Asks the master for this file's name now, by its inode, and goes by it: another client may
   * have renamed it (or a rename by this mount is not answered yet). ESTALE when no name has it.
   * Concurrent callers (several flushes refused at once) share one call.
   */
  relocate(): Promise<void> {
    if (this.gone) return Promise.reject(this.gone);
    this.relocating ??= (async () => {
      try {
        const from = this.path;
        const path = await this.master.locate(this.ino, from).catch((err: unknown) => {
          // No name has it: removed by another client, for good (inode numbers are never reused).
          if (err instanceof FsError && err.code === 'ESTALE') this.gone = err;
          throw err;
        });
        // Unless a rename by this mount was answered meanwhile (then that name is newer).
        if (path === from || this.path !== from) return;
        this.path = path;
        this.moved(from);
      } finally {
        this.relocating = null;
      }
    })();
    return this.relocating;
  }

  /** A span of the file, read from `offset` to `end` now or once `after` resolves. */
  private fetch(offset: number, end: number, after?: Promise<void>): Span {
    const span: Span = { offset, end, data: after ? after.then(() => this.readRange(offset, end)) : this.readRange(offset, end) };
    span.data.catch(() => undefined); // a read-ahead nobody asks for must not be an unhandled rejection
    return span;
  }

  /** Bytes [offset, end) of the file, chunk pieces in parallel; holes read as zeros. */
  private async readRange(offset: number, end: number): Promise<Buffer> {
    const chunkSize = await this.locations.chunkSize();
    const pieces: Promise<Buffer>[] = [];
    for (let at = offset; at < end;) {
      const index = Math.floor(at / chunkSize);
      const inChunk = at - index * chunkSize;
      const length = Math.min(end - at, chunkSize - inChunk, MAX_CHUNK_IO_BYTES);
      pieces.push(this.readPiece(index, inChunk, length));
      at += length;
    }
    const data = await Promise.all(pieces);
    return data.length === 1 ? data[0] : Buffer.concat(data, end - offset);
  }

  /**
   * One piece of a chunk, padded with zeros. On failure, locations are asked for again once; a
   * chunk the master knows no replica of yet (it has just restarted and the chunkservers'
   * reports are still coming in) is asked for again until NO_REPLICA_WAIT_MS have passed.
   */
  private async readPiece(index: number, inChunk: number, length: number): Promise<Buffer> {
    const giveUp = performance.now() + NO_REPLICA_WAIT_MS;
    for (let failures = 0; ;) {
      const chunk = await this.locations.get(index);
      if (!chunk) return Buffer.alloc(length);
      if (chunk.replicas.length === 0 && performance.now() < giveUp) {
        await new Promise((r) => setTimeout(r, NO_REPLICA_PAUSE_MS));
        this.locations.invalidate();
        continue;
      }
      try {
        const data = await this.reader.readChunk(this.path, chunk, inChunk, length);
        return data.length === length ? data : Buffer.concat([data, Buffer.alloc(length - data.length)]);
      } catch (err) {
        if (++failures > 1) throw err;
        this.locations.invalidate(); // moved or re-versioned since we asked
      }
    }
  }
}

/** Whether any range of `a` overlaps any of `b` (half-open ranges). */
function overlap(a: Array<[number, number]>, b: Array<[number, number]>): boolean {
  return a.some(([s1, e1]) => b.some(([s2, e2]) => s1 < e2 && s2 < e1));
}
