import { performance } from 'perf_hooks';
import { FsError } from '../common/fs-error';
import { logger } from '../common/log';
import { BLOCK_SIZE } from './block-checksums';
import { DataDir } from './data-dir';

const log = logger('chunk-store');
/** How long a directory's free space is trusted for placing new chunks (ms). */
const SPACE_FRESH_MS = 1000;

type Space = { capacityBytes: number; freeBytes: number };

export interface DataDirUsage {
  path: string;
  healthy: boolean;
  /** Why it was taken out of service; '' while healthy. */
  error: string;
  chunks: number;
  /** Bytes of chunk data held here. */
  usedBytes: number;
  /** Size and free space of its file system (bytes); 0 when unhealthy. */
  capacityBytes: number;
  freeBytes: number;
}

export interface StoreUsage {
  /** Over healthy directories, each file system counted once (bytes). */
  capacityBytes: number;
  freeBytes: number;
  /** Bytes of chunk data in healthy directories. */
  usedBytes: number;
  dirs: DataDirUsage[];
}

/**
 * A chunkserver's data directories as a set: which are in service, the periodic check that
 * notices one removed while idle (as LogWriter.checkHealth does for metadata directories),
 * where a new chunk goes, and space accounting. Any error from statfs or the identity check
 * takes a directory out of service; `onFailed` then lets the store drop its chunks.
 */
export class DataDirs {
  private readonly healthTimer: NodeJS.Timeout;
  private readonly spaces = new Map<DataDir, { atMs: number; space: Promise<Space | null> }>();

  constructor(
    readonly all: readonly DataDir[],
    private readonly onFailed: (dir: DataDir) => void,
    healthCheckMs: number,
  ) {
    this.healthTimer = setInterval(() => void this.checkHealth(), healthCheckMs);
    this.healthTimer.unref();
  }

  get anyHealthy(): boolean {
    return this.all.some((d) => d.healthy);
  }

  fail(dir: DataDir, err: unknown): void {
    if (!dir.healthy) return;
    dir.healthy = false;
    dir.error = err instanceof Error ? err.message : String(err);
    log.error(`ALARM: data directory ${dir.path} taken out of service: ${dir.error}`);
    this.onFailed(dir);
    if (!this.anyHealthy) log.error('ALARM: every data directory has failed');
  }

  /**
   * The healthy directory with the most free space (ties: fewest chunks), by free space at most
   * a second old: a statfs per new chunk was a thread-pool round trip on every small file's path.
   */
  async roomiest(skip: ReadonlySet<DataDir> = new Set()): Promise<DataDir> {
    const healthy = this.all.filter((d) => d.healthy && !skip.has(d));
    const spaces = await Promise.all(healthy.map((d) => this.recentSpace(d)));
    let best: DataDir | null = null;
    let bestFree = BLOCK_SIZE - 1; // a directory with less than a block free cannot take a chunk
    for (const [i, d] of healthy.entries()) {
      const free = spaces[i]?.freeBytes ?? -1;
      // Directories on one file system tie on free space: spread them by chunk count.
      if (free > bestFree || (best && free === bestFree && d.chunks < best.chunks)) {
        best = d;
        bestFree = free;
      }
    }
    if (best) return best;
    if (!this.anyHealthy) throw new FsError('EIO', 'no healthy data directory');
    throw new FsError('ENOSPC', 'every healthy data directory is full');
  }

  async usage(): Promise<StoreUsage> {
    const spaces = await Promise.all(this.all.map((d) => (d.healthy ? this.space(d) : null)));
    const total: StoreUsage = { capacityBytes: 0, freeBytes: 0, usedBytes: 0, dirs: [] };
    const devices = new Set<number>();
    this.all.forEach((d, i) => {
      const space = spaces[i] ?? { capacityBytes: 0, freeBytes: 0 };
      const { path, healthy, error } = d;
      // An operation that raced with the failure may still have touched a dead directory's counters.
      const [chunks, usedBytes] = healthy ? [d.chunks, d.usedBytes] : [0, 0];
      total.dirs.push({ path, healthy, error, chunks, usedBytes, ...space });
      if (!healthy) return;
      total.usedBytes += usedBytes;
      if (devices.has(d.device)) return;
      devices.add(d.device);
      total.capacityBytes += space.capacityBytes;
      total.freeBytes += space.freeBytes;
    });
    return total;
  }

  close(): void {
    clearInterval(this.healthTimer);
  }

  private recentSpace(dir: DataDir): Promise<Space | null> {
    const known = this.spaces.get(dir);
    if (known && performance.now() - known.atMs < SPACE_FRESH_MS) return known.space;
    const space = this.space(dir);
    this.spaces.set(dir, { atMs: performance.now(), space });
    return space;
  }

  /** A write found `dir` full: no room there until its free space is looked at again. */
  noteFull(dir: DataDir): void {
    // Capacity does not choose a directory; 0 stands for "unknown" until the next statfs.
    this.spaces.set(dir, { atMs: performance.now(), space: Promise.resolve({ capacityBytes: 0, freeBytes: 0 }) });
  }

  /** Free space, or null when statfs fails (the directory is then out of service). */
  private space(dir: DataDir): Promise<Space | null> {
    return dir.space().catch((err: unknown) => {
      this.fail(dir, err);
      return null;
    });
  }

  private async checkHealth(): Promise<void> {
    await Promise.all(this.all.filter((d) => d.healthy).map((d) => d.checkStillThere().catch((err: unknown) => this.fail(d, err))));
  }
}
