import * as fs from 'fs';
import { join } from 'path';
import { FsError } from '../common/fs-error';
import { logger } from '../common/log';
import { CHUNKS_SUBDIR, ChunkFile, ChunkFileKind, fanOutName, parseChunkFileName } from './chunk-file';

const log = logger('chunk-store');
const FAN_OUT = Array.from({ length: 256 }, (_, i) => fanOutName(i));

export interface ScannedChunk {
  handle: number;
  version: number;
  size: number;
}

/**
 * One data directory of a chunkserver: its layout (`chunks/` with 256 fan-out subdirectories
 * made up front, so that creating a chunk never recreates a directory removed under us), the
 * scan at start-up, and the identity check that notices it being removed or replaced.
 * Disk errors are thrown as they come; the store decides what they mean.
 */
export class DataDir {
  healthy = true;
  /** Why it was taken out of service; '' while healthy. */
  error = '';
  /** Chunks indexed here and the sum of their sizes (bytes), kept by the store. */
  chunks = 0;
  usedBytes = 0;
  private readonly chunksDir: string;
  private identity: fs.Stats | null = null;

  constructor(readonly path: string) {
    this.chunksDir = join(this.path, CHUNKS_SUBDIR);
  }

  /** Id of the file system holding it (two directories on one disk share capacity). */
  get device(): number {
    return this.identity?.dev ?? -1;
  }

  /** Makes the layout where missing and lists the intact chunks, removing debris of crashes. */
  async open(): Promise<ScannedChunk[]> {
    await fs.promises.mkdir(this.chunksDir, { recursive: true });
    await Promise.all(FAN_OUT.map((name) => fs.promises.mkdir(join(this.chunksDir, name), { recursive: true })));
    this.identity = await fs.promises.stat(this.chunksDir);
    const found: ScannedChunk[] = [];
    for (const name of FAN_OUT) found.push(...(await this.scanFanOut(name)));
    return found;
  }

  /** Throws when the directory is gone or is no longer the one opened (rm -rf, unmounted). */
  async checkStillThere(): Promise<void> {
    const now = await fs.promises.stat(this.chunksDir);
    if (!this.identity || now.ino !== this.identity.ino || now.dev !== this.identity.dev) {
      throw new FsError('EIO', `${this.chunksDir} was replaced since the store opened it`);
    }
  }

  async space(): Promise<{ capacityBytes: number; freeBytes: number }> {
    const s = await fs.promises.statfs(this.path);
    return { capacityBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize };
  }

  private async scanFanOut(name: string): Promise<ScannedChunk[]> {
    const dir = join(this.chunksDir, name);
    const files = new Map<number, Set<ChunkFileKind>>();
    for (const entry of await fs.promises.readdir(dir)) {
      const parsed = parseChunkFileName(entry);
      if (!parsed || fanOutName(parsed.handle) !== name) continue;
      if (!files.has(parsed.handle)) files.set(parsed.handle, new Set());
      files.get(parsed.handle)!.add(parsed.kind);
    }
    const found = await Promise.all([...files].map(([handle, kinds]) => this.loadChunk(handle, kinds)));
    return found.filter((c): c is ScannedChunk => c !== null);
  }

  private async loadChunk(handle: number, kinds: Set<ChunkFileKind>): Promise<ScannedChunk | null> {
    const file = new ChunkFile(this.path, handle);
    // A .meta.tmp is a header replacement that never got renamed: the .meta still holds the truth.
    if (kinds.has('tmp')) await fs.promises.rm(`${file.metaPath}.tmp`, { force: true });
    if (!kinds.has('data') || !kinds.has('meta')) {
      if (kinds.has('data') || kinds.has('meta')) {
        log.warn(`removing half-created or half-deleted chunk ${handle} in ${this.path}`);
        await file.remove();
      }
      return null;
    }
    const stored = await file.load();
    if (!stored) {
      log.warn(`removing chunk ${handle} in ${this.path}: its header is damaged`);
      await file.remove();
      return null;
    }
    return { handle, ...stored };
  }
}
