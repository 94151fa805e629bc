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
 * Spares kept open ahead of their taking: opening one through the thread pool on a small file's
 * path took 0.5-2.9 ms (open to rename, three chunkservers and a mount sharing two cores).
 */
export const SPARES_OPEN_AHEAD = 4;

/** A spare taken: its path, and its file when it was opened ahead (the taker closes it). */
export interface Spare {
  path: string;
  fh: fs.promises.FileHandle | null;
}

/**
 * Files made ahead of time, in a data directory's spare/ subdirectory, for new chunks to take
 * (see chunk-file.ts for why): each is written with zeros through its header, checksums and
 * first SPARE_DATA_BYTES of data, synced, and its directory synced, so that a chunk created in
 * one overwrites blocks already allocated and its sync writes data only, no journal commit.
 * take() never waits: with no spare ready the chunk is created the slow way, and a round of
 * new spares starts in the background whenever fewer than half the target are left. A few are
 * kept open, so that taking one costs no open. Spares take at most 1% of the free space: a
 * filling disk gets none.
 *
 * What a spare holds is never trusted (a create writes its header and the whole checksum area, and
 * cuts the file at the chunk's end before a gap), so a spare whose making a crash interrupted,
 * or that holds what a failed create left, is as good as any, only slower to fill.
 */
export class SpareFiles {
  /** Spares not opened yet. */
  private readonly ready: string[] = [];
  /** Spares opened ahead, and the opens under way. */
  private readonly opened: Spare[] = [];
  private readonly opening = new Set<Promise<unknown>>();
  private openSoon = false;
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
    this.openAhead();
  }

  /** Spares ready, opened or being opened. */
  private get held(): number {
    return this.ready.length + this.opened.length + this.opening.size;
  }

  /** A round of new spares is being written and synced. */
  get making(): boolean {
    return this.round !== null;
  }

  /** A spare, now the caller's to rename away (and its file to close), or null when none is ready. */
  take(): Spare | null {
    const spare = this.opened.pop() ?? (this.ready.length > 0 ? { path: this.ready.pop()!, fh: null } : null);
    // Opened after the taker's own work of this turn (a small chunk's create is synchronous).
    if (!this.openSoon) {
      this.openSoon = true;
      setImmediate(() => {
        this.openSoon = false;
        this.openAhead();
      });
    }
    if (this.held < this.target / 2) this.refill();
    return spare;
  }

  /** Stops making spares; resolves once a round in progress has ended and the open ones are closed. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([this.round, ...this.opening]);
    await Promise.all(this.opened.splice(0).map((s) => s.fh?.close().catch(() => undefined)));
  }

  /** Opens ready spares in the background until SPARES_OPEN_AHEAD are open. */
  private openAhead(): void {
    while (!this.closed && this.opened.length + this.opening.size < SPARES_OPEN_AHEAD && this.ready.length > 0) {
      const path = this.ready.pop()!;
      const done: Promise<unknown> = fs.promises.open(path, 'r+').then(
        (fh) => {
          if (this.closed) return fh.close();
          this.opened.push({ path, fh });
        },
        (err: unknown) => log.warn(`opening spare chunk file ${path} failed: ${err instanceof Error ? err.message : String(err)}`),
      ).finally(() => this.opening.delete(done));
      this.opening.add(done);
    }
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
      const count = Math.min(BATCH, this.target - this.held, room);
      if (this.closed || count <= 0) return;
      const names = Array.from({ length: count }, () => join(this.dir, String(this.nextName++)));
      await Promise.all(names.map((name) => withFile(name, 'wx', async (fh) => {
        await writeFully(fh, zeros, 0);
        await fh.datasync();
      })));
      await fsyncDir(this.dir);
      if (!this.closed) this.ready.push(...names);
      this.openAhead();
    }
  }
}
