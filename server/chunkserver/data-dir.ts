import * as fs from 'fs';
import { join } from 'path';
import { FsError } from '../common/fs-error';
import { statIdentity } from '../common/host-identity';
import { logger } from '../common/log';
import { CHECKSUMS_AT, CHUNKS_SUBDIR, ChunkFile, ChunkState, chunkFileHandle, chunkFilePath, dataOffsetFor, fanOutName, isNewer, readHeader, withFile } from './chunk-file';
import { readFully } from './direct-io';
import { convertLegacyChunk, legacyFileName, removeLegacyFiles } from './legacy-chunk-files';
import { SpareFiles } from './spare-files';

const log = logger('chunk-store');
const FAN_OUT = Array.from({ length: 256 }, (_, i) => fanOutName(i));
const SPARE_SUBDIR = 'spare';

export interface ScannedChunk {
  handle: number;
  state: ChunkState;
}

/**
 * One data directory of a chunkserver: its layout (`chunks/` with 256 fan-out subdirectories
 * made up front, so that creating a chunk never recreates a directory removed under us, and
 * `spare/` with files made ahead for new chunks), the scan at start-up, and the identity check
 * that notices it being removed or replaced. Disk errors are thrown as they come; the store
 * decides what they mean.
 */
export class DataDir {
  healthy = true;
  /** Why it was taken out of service; '' while healthy. */
  error = '';
  /** Chunks indexed here and the sum of their sizes (bytes), kept by the store. */
  chunks = 0;
  usedBytes = 0;
  /** Where a new chunk's data starts in its file (after its header and checksums). */
  readonly dataOffset: number;
  readonly spares: SpareFiles;
  private readonly chunksDir: string;
  private identity: fs.Stats | null = null;

  constructor(
    readonly path: string,
    private readonly chunkSize: number,
    /** Spare files kept ready (SpareFiles' default when not given). */
    spareFiles?: number,
  ) {
    this.chunksDir = join(this.path, CHUNKS_SUBDIR);
    this.dataOffset = dataOffsetFor(chunkSize);
    this.spares = new SpareFiles(join(this.path, SPARE_SUBDIR), this.dataOffset, spareFiles);
  }

  /** Id of the file system holding it (two directories on one disk share capacity). */
  get device(): number {
    return this.identity?.dev ?? -1;
  }

  /** Device and inode of its chunks directory once opened ('' before): one directory under two paths shows the same. */
  get inode(): string {
    return this.identity ? statIdentity(this.identity) : '';
  }

  /**
   * Makes the layout where missing and lists the intact chunks, removing debris of crashes and
   * converting chunks of the older format; then starts making spares.
   */
  async open(): Promise<ScannedChunk[]> {
    await fs.promises.mkdir(this.chunksDir, { recursive: true });
    await Promise.all([...FAN_OUT.map((name) => fs.promises.mkdir(join(this.chunksDir, name), { recursive: true })), fs.promises.mkdir(this.spares.dir, { recursive: true })]);
    this.identity = await fs.promises.stat(this.chunksDir);
    const found = new Map<number, ChunkState>();
    for (const name of FAN_OUT) for (const c of await this.scanFanOut(name)) found.set(c.handle, c.state);
    await this.scanSpares(found);
    this.spares.refill();
    return [...found].map(([handle, state]) => ({ handle, state }));
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
    const chunkFiles = new Set<number>();
    const legacy = new Map<number, Set<string>>();
    for (const dirent of await fs.promises.readdir(dir, { withFileTypes: true })) {
      if (!dirent.isFile()) continue; // not a chunk's: left alone
      const current = chunkFileHandle(dirent.name);
      const old = legacyFileName(dirent.name);
      if (current !== null && fanOutName(current) === name) chunkFiles.add(current);
      else if (old && fanOutName(old.handle) === name) legacy.set(old.handle, (legacy.get(old.handle) ?? new Set()).add(old.kind));
    }
    const found: ScannedChunk[] = [];
    // One at a time: a conversion reads a chunk whole and writes it again.
    for (const [handle, kinds] of legacy) {
      if (kinds.has('data') && kinds.has('meta')) {
        // The pair is the truth until converted: a .chunk beside it is a conversion cut short.
        chunkFiles.delete(handle);
        const state = await convertLegacyChunk(this.path, handle, this.chunkSize);
        if (state) found.push({ handle, state });
      } else {
        // Without a .chunk, a legacy chunk half created or half deleted; with one, the end of a conversion.
        if (!chunkFiles.has(handle)) log.warn(`removing half-created or half-deleted chunk ${handle} in ${this.path}`);
        await removeLegacyFiles(this.path, handle);
      }
    }
    const loaded = await Promise.all([...chunkFiles].map(async (handle) => ({ handle, state: await this.loadChunk(handle) })));
    return [...found, ...loaded.filter((c): c is ScannedChunk => c.state !== null)];
  }

  private async loadChunk(handle: number): Promise<ChunkState | null> {
    const file = new ChunkFile(this.path, handle);
    const state = await file.load();
    if (!state) {
      log.warn(`removing chunk ${handle} in ${this.path}: its header is damaged (a create cut short) or names another chunk`);
      await file.remove();
    }
    return state;
  }

  /**
   * Spares holding a chunk (taken, written, and the rename a crash undid) go back where they
   * belong, unless a newer copy of the chunk is there; the others are ready to take again.
   */
  private async scanSpares(found: Map<number, ChunkState>): Promise<void> {
    const free: string[] = [];
    for (const entry of await fs.promises.readdir(this.spares.dir, { withFileTypes: true })) {
      if (!entry.isFile()) continue; // not ours to take, nor to remove
      const { name } = entry;
      const file = join(this.spares.dir, name);
      const { header, clean } = await withFile(file, 'r', async (fh) => {
        const found = await readHeader(fh);
        return { header: found, clean: found !== null || (await this.checksumsClear(fh)) };
      });
      if (!header) {
        // Checksums without a header: a create a crash cut short. Taken again, such a file
        // could pair its old checksums with its old bytes under a new chunk's header.
        if (clean) free.push(name);
        else await fs.promises.rm(file);
        continue;
      }
      const there = found.get(header.handle);
      if (there && !isNewer(header.state, there)) {
        log.warn(`removing an older copy of chunk ${header.handle} from ${this.spares.dir}`);
        await fs.promises.rm(file);
        continue;
      }
      await fs.promises.rename(file, chunkFilePath(this.path, header.handle));
      found.set(header.handle, header.state);
    }
    this.spares.addScanned(free);
  }

  /** Whether the checksum area of the file open as `fh` holds nothing (zeros, or the file ends). */
  private async checksumsClear(fh: fs.promises.FileHandle): Promise<boolean> {
    const area = Buffer.alloc(this.dataOffset - CHECKSUMS_AT);
    const got = await readFully(fh, area, CHECKSUMS_AT);
    return area.subarray(0, got).every((b) => b === 0);
  }
}
