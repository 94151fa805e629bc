import { performance } from 'perf_hooks';
import * as fs from 'fs';
import { join } from 'path';
import { logger } from '../common/log';
import { fsyncDir, withFile } from './chunk-file';
import { writeFully } from './direct-io';

const log = logger('chunk-store');

/** Spares kept ready per data directory, and how many are made per round (one directory sync). */
const DEFAULT_TARGET = 64;
const BATCH = 16;
/** Bytes of data a spare holds in place, past its header and checksums: most small files fit. */
const SPARE_DATA_BYTES = 16 * 1024;
/** Spares never take more than this share of the free space. */
const FREE_SPACE_SHARE = 0.01;
/** After a failed round, the next waits this long (the store notices a failing disk itself). */
const RETRY_MS = 5000;

/**
 * Files made ahead of time, in a data directory's spare/ subdirectory, for new chunks to take
 * (see chunk-file.ts for why): each is written with zeros through its header, checksums and
 * first SPARE_DATA_BYTES of data, synced, and its directory synced, so that a chunk created in
 * one overwrites blocks already allocated and its sync writes data only, no journal commit.
 * take() never waits: with no spare ready the chunk is created the slow way, and a round of
 * new spares starts in the background whenever fewer than half the target are left. Spares
 * take at most 1% of the free space: a filling disk gets none.
 *
 * What a spare holds is never trusted (a create writes its header and the whole checksum area, and
 * cuts the file at the chunk's end before a gap), so a spare whose making a crash interrupted,
 * or that holds what a failed create left, is as good as any, only slower to fill.
 */
export class SpareFiles {
  private readonly ready: string[] = [];
  private nextName = 0;
  private round: Promise<void> | null = null;
  private retryAfterMs = 0;
  private closed = false;

  constructor(
    readonly dir: string,
    /** Where a chunk's data starts (its header and checksums come before). */
    private readonly dataOffset: number,
    private readonly target = DEFAULT_TARGET,
  ) {}

  /** Files found in the directory by the scan that hold no chunk: ready to take. */
  addScanned(names: string[]): void {
    for (const name of names) {
      this.ready.push(join(this.dir, name));
      if (/^\d+$/.test(name)) this.nextName = Math.max(this.nextName, Number(name) + 1);
    }
  }

  /** A round of new spares is being written and synced. */
  get making(): boolean {
    return this.round !== null;
  }

  /** A spare's path, now the caller's to rename away, or null when none is ready. */
  take(): string | null {
    const spare = this.ready.pop() ?? null;
    if (this.ready.length < this.target / 2) this.refill();
    return spare;
  }

  /** Stops making spares; resolves once a round in progress has ended. */
  async close(): Promise<void> {
    this.closed = true;
    await this.round;
  }

  /** Starts a round of new spares unless one runs, the last failed recently, or it is closed. */
  refill(): void {
    if (this.round || this.closed || performance.now() < this.retryAfterMs) return;
    this.round = this.makeRound()
      .catch((err: unknown) => {
        this.retryAfterMs = performance.now() + RETRY_MS;
        log.warn(`making spare chunk files in ${this.dir} failed: ${err instanceof Error ? err.message : String(err)}`);
      })
      .finally(() => {
        this.round = null;
      });
  }

  private async makeRound(): Promise<void> {
    const zeros = Buffer.alloc(this.dataOffset + SPARE_DATA_BYTES);
    for (;;) {
      const { bavail, bsize } = await fs.promises.statfs(this.dir);
      const room = Math.floor((bavail * bsize * FREE_SPACE_SHARE) / zeros.length);
      const count = Math.min(BATCH, this.target - this.ready.length, room);
      if (this.closed || count <= 0) return;
      const names = Array.from({ length: count }, () => join(this.dir, String(this.nextName++)));
      await Promise.all(names.map((name) => withFile(name, 'wx', async (fh) => {
        await writeFully(fh, zeros, 0);
        await fh.datasync();
      })));
      await fsyncDir(this.dir);
      if (!this.closed) this.ready.push(...names);
    }
  }
}
