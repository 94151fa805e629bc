import type { ChunkLocation__Output as ChunkLocation } from '../../generated/chunkfs/master/ChunkLocation';
import type { OpenTarget } from '../file-writer';
import type { MasterClient } from '../master-client';
import { byCurrentName } from './renamed-retry';

/** Chunk locations asked for at a time. */
export const LOCATION_WINDOW = 64;

/** A window of locations as the master answers it (chunkLocations from index 0). */
export interface LocationWindow {
  chunks: ChunkLocation[];
  chunkSize: number;
}

/**
 * Where the chunks of one open file live, fetched from the master a window at a time and kept
 * until invalidated (a read that finds a replica gone or at another version invalidates and
 * asks again). Close-to-open: a new open starts with an empty cache.
 */
export class ChunkLocations {
  private readonly known = new Map<number, ChunkLocation | null>();
  private chunkSizeBytes = 0;

  constructor(
    private readonly master: MasterClient,
    /** The open file: its name now (a rename changes it), and its inode (see FileTarget). */
    private readonly file: OpenTarget,
  ) {}

  async chunkSize(): Promise<number> {
    if (this.chunkSizeBytes === 0) await this.fetch(0);
    return this.chunkSizeBytes;
  }

  /** The chunk at `index`, or null for a hole. */
  async get(index: number): Promise<ChunkLocation | null> {
    if (!this.known.has(index)) await this.fetch(index);
    return this.known.get(index) ?? null;
  }

  invalidate(): void {
    this.known.clear();
  }

  /** The first window, asked for beside the open's own call (one round trip for both). */
  seed(window: LocationWindow): void {
    this.learn(0, window);
  }

  private async fetch(first: number): Promise<void> {
    this.learn(first, await byCurrentName(this.file, () => this.master.chunkLocations(this.file.path, first, LOCATION_WINDOW, this.file.ino)));
  }

  private learn(first: number, { chunks, chunkSize }: LocationWindow): void {
    this.chunkSizeBytes = chunkSize;
    for (let i = first; i < first + LOCATION_WINDOW; i++) this.known.set(i, null);
    for (const c of chunks) this.known.set(c.index, c.handle === 0 ? null : c);
  }
}
