import * as fs from 'fs';
import { promisify } from 'util';
import { FsError } from '../../common/fs-error';
import { logger } from '../../common/log';
import { SlowDiskGuard } from '../../common/slow-disk';
import { encodeFrame } from './frame';
import { fileHeader, fsyncDir, SEGMENT_MAGIC, segmentPath } from './meta-dir';

const write = promisify(fs.write);
const fstat = promisify(fs.fstat);
const stat = promisify(fs.stat);
const log = logger('oplog');

/** A segment is closed and a new one started past this size (bytes). */
const SEGMENT_ROLL_BYTES = 64 * 1024 * 1024;
/**
 * A batch of at most this many records is written on the main thread, blocking it for the
 * O_DSYNC write (~0.3 ms): handing it to the thread pool and back costs two thread wake-ups,
 * which on a busy 2-core machine took longer than the write (a mkdir's session call: 0.9-1.1 ms
 * through the pool, 0.7-0.76 ms without). Bigger batches, which come with many clients, go
 * through the pool so that the next batch forms while the disk works.
 */
const SYNC_WRITE_MAX_RECORDS = 2;
/** How often each directory is checked for having been removed under us (ms). */
const HEALTH_CHECK_MS = 1000;

/** One metadata directory as the writer sees it. */
export interface LogDir {
  readonly path: string;
  healthy: boolean;
  /** Why it was dropped; '' while healthy. */
  error: string;
}

interface OpenDir extends LogDir {
  fd: number;
  segment: string;
  segmentBytes: number;
}

interface Waiter {
  txid: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Appends framed records to the current segment of every healthy metadata directory with
 * group commit: while one write+fdatasync is in flight, new records queue up, and the next
 * round writes them all with one write and one fdatasync per directory. A record is durable
 * when every healthy directory has synced it. A directory whose write or sync fails (EIO,
 * ENOSPC, removed) is dropped with an alarm; when none is left the writer is dead and
 * `onAllFailed` decides the process's fate (the master exits: it cannot acknowledge anything).
 */
export class LogWriter {
  private readonly dirs: OpenDir[] = [];
  private pending: Buffer[] = [];
  private waiters: Waiter[] = [];
  private lastAppended: number;
  private durable: number;
  private flushing = false;
  private rollRequested = false;
  private rollWaiters: Array<(txid: number) => void> = [];
  private dead: Error | null = null;
  /** After a slow write round the next go through the pool (a busy disk must not stall heartbeats and reads). */
  private readonly disk = new SlowDiskGuard();
  /** Other writes to these disks under way (a checkpoint): log writes go through the pool. */
  private otherDiskWork = 0;
  /** Write+sync rounds so far: far fewer than records when group commit works. */
  syncRounds = 0;
  private readonly healthTimer: NodeJS.Timeout;

  /** Opens a fresh segment starting at `lastTxid + 1` in each directory. */
  constructor(
    dirPaths: string[],
    lastTxid: number,
    private readonly epoch: number,
    private readonly onAllFailed: (err: Error) => void,
  ) {
    this.lastAppended = lastTxid;
    this.durable = lastTxid;
    for (const p of dirPaths) {
      const d: OpenDir = { path: p, healthy: true, error: '', fd: -1, segment: '', segmentBytes: 0 };
      this.dirs.push(d);
      try {
        this.openSegmentSync(d, lastTxid + 1);
      } catch (err) {
        this.dropDir(d, err);
      }
    }
    if (!this.dirs.some((d) => d.healthy)) throw new Error('no metadata directory is writable');
    this.healthTimer = setInterval(() => void this.checkHealth(), HEALTH_CHECK_MS);
    this.healthTimer.unref();
  }

  get lastTxid(): number {
    return this.lastAppended;
  }
  get durableTxid(): number {
    return this.durable;
  }
  get directories(): readonly LogDir[] {
    return this.dirs;
  }
  healthyPaths(): string[] {
    return this.dirs.filter((d) => d.healthy).map((d) => d.path);
  }

  /** Queues a record; returns its txid. Call waitDurable(txid) before acknowledging it. */
  append(payload: Buffer): number {
    if (this.dead) throw new FsError('EIO', `operation log unavailable: ${this.dead.message}`);
    const txid = ++this.lastAppended;
    this.pending.push(encodeFrame(txid, this.epoch, payload));
    this.startFlush();
    return txid;
  }

  waitDurable(txid: number): Promise<void> {
    if (txid <= this.durable) return Promise.resolve();
    if (this.dead) return Promise.reject(new FsError('EIO', `operation log unavailable: ${this.dead.message}`));
    return new Promise((resolve, reject) => this.waiters.push({ txid, resolve, reject }));
  }

  /**
   * Closes the current segments once everything appended so far is durable and starts new
   * ones; resolves with the last txid of the closed segments (what a checkpoint can cover).
   */
  roll(): Promise<number> {
    return new Promise((resolve) => {
      this.rollWaiters.push(resolve);
      this.rollRequested = true;
      this.startFlush();
    });
  }

  /**
   * Starts a write round at the end of this event-loop turn rather than at once: the records
   * of a whole batch of calls (a chunk's confirmation and the size it brings, a create and its
   * first chunk) then share one write and one sync.
   */
  private startFlush(): void {
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => void this.flushLoop());
  }

  /** Runs `work`, which writes to the metadata disks too; meanwhile no log write blocks the event loop. */
  async besideOtherDiskWork<T>(work: () => Promise<T>): Promise<T> {
    this.otherDiskWork++;
    try {
      return await work();
    } finally {
      this.otherDiskWork--;
    }
  }

  /** Marks a directory failed from outside (e.g. a checkpoint could not be written there). */
  fail(dirPath: string, err: unknown): void {
    const d = this.dirs.find((x) => x.path === dirPath && x.healthy);
    if (d) this.dropDir(d, err);
    this.checkAlive();
  }

  async close(): Promise<void> {
    clearInterval(this.healthTimer);
    while (this.flushing || this.pending.length) await new Promise((r) => setImmediate(r));
    for (const d of this.dirs) if (d.fd >= 0) fs.closeSync(d.fd);
    this.dirs.forEach((d) => (d.fd = -1));
  }

  private async flushLoop(): Promise<void> {
    try {
      while ((this.pending.length > 0 || this.rollRequested) && !this.dead) {
        if (this.pending.length > 0) {
          const records = this.pending.length;
          const batch = records === 1 ? this.pending[0] : Buffer.concat(this.pending);
          const last = this.lastAppended;
          this.pending = [];
          const onMainThread = records <= SYNC_WRITE_MAX_RECORDS && this.disk.quick && this.otherDiskWork === 0;
          await this.disk.timed(() => Promise.all(this.dirs.filter((d) => d.healthy).map((d) => this.writeAndSync(d, batch, onMainThread))));
          if (!this.checkAlive()) break;
          this.syncRounds++;
          this.durable = last;
          this.releaseWaiters();
        }
        const big = this.dirs.some((d) => d.healthy && d.segmentBytes > SEGMENT_ROLL_BYTES);
        if ((this.rollRequested || big) && this.pending.length === 0) {
          const waiters = this.rollWaiters;
          this.rollRequested = false;
          this.rollWaiters = [];
          for (const d of this.dirs.filter((x) => x.healthy)) {
            try {
              fs.closeSync(d.fd);
              this.openSegmentSync(d, this.durable + 1);
            } catch (err) {
              this.dropDir(d, err);
            }
          }
          if (!this.checkAlive()) break;
          waiters.forEach((w) => w(this.durable));
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /** The segment is opened O_DSYNC: a write returns once the data is durable. */
  private async writeAndSync(d: OpenDir, buf: Buffer, onMainThread: boolean): Promise<void> {
    try {
      let off = 0;
      while (off < buf.length) {
        off += onMainThread
          ? fs.writeSync(d.fd, buf, off, buf.length - off, null)
          : (await write(d.fd, buf, off, buf.length - off, null)).bytesWritten;
      }
      d.segmentBytes += buf.length;
    } catch (err) {
      this.dropDir(d, err);
    }
  }

  private openSegmentSync(d: OpenDir, firstTxid: number): void {
    d.segment = segmentPath(d.path, firstTxid);
    // Truncating is safe: a segment with this name can only hold records recovery discarded.
    // O_DSYNC makes each write durable before it returns: one thread-pool round trip per
    // group commit instead of a write followed by an fdatasync.
    const { O_WRONLY, O_CREAT, O_TRUNC, O_APPEND, O_DSYNC } = fs.constants;
    d.fd = fs.openSync(d.segment, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_DSYNC, 0o644);
    fs.writeSync(d.fd, fileHeader(SEGMENT_MAGIC, firstTxid));
    fsyncDir(d.path);
    d.segmentBytes = 0;
  }

  private dropDir(d: OpenDir, err: unknown): void {
    if (!d.healthy) return;
    d.healthy = false;
    d.error = err instanceof Error ? err.message : String(err);
    log.error(`ALARM: metadata directory ${d.path} dropped from the operation log: ${d.error}`);
    if (d.fd >= 0) {
      try {
        fs.closeSync(d.fd);
      } catch {
        // already broken
      }
      d.fd = -1;
    }
  }

  /** False (and the writer dead) when no directory is left. */
  private checkAlive(): boolean {
    if (this.dead) return false;
    if (this.dirs.some((d) => d.healthy)) return true;
    this.dead = new Error(`every metadata directory failed (${this.dirs.map((d) => `${d.path}: ${d.error}`).join('; ')})`);
    log.error(`FATAL: ${this.dead.message}`);
    const err = new FsError('EIO', `operation log unavailable: ${this.dead.message}`);
    for (const w of this.waiters) w.reject(err);
    this.waiters = [];
    this.onAllFailed(this.dead);
    return false;
  }

  private releaseWaiters(): void {
    let i = 0;
    while (i < this.waiters.length && this.waiters[i].txid <= this.durable) this.waiters[i++].resolve();
    if (i > 0) this.waiters = this.waiters.slice(i);
  }

  /** A directory removed while open still accepts writes (to an unlinked file): detect it. */
  private async checkHealth(): Promise<void> {
    for (const d of this.dirs) {
      if (!d.healthy || d.fd < 0) continue;
      const segment = d.segment;
      try {
        const [onDisk, open] = await Promise.all([stat(segment), fstat(d.fd)]);
        if (onDisk.ino !== open.ino || onDisk.dev !== open.dev) throw new Error('segment file was replaced');
      } catch (err) {
        // A roll meanwhile closes the fd (and may reuse its number): judge only a stable segment.
        if (d.healthy && d.segment === segment) this.dropDir(d, err);
      }
    }
    this.checkAlive();
  }
}
