import { performance } from 'perf_hooks';
import * as fs from 'fs';

type FileHandle = fs.promises.FileHandle;

/** An open file as held here: a FileHandle, or a plain descriptor and how to close it. */
export interface HeldFile {
  readonly fd: number;
  close(): Promise<void>;
}

/** Opens the file at `path` (a failure rejects: nothing is thrown). */
export type Opener<F extends HeldFile> = (path: string) => Promise<F>;

/** A chunk's file held open, with its checksums once read. */
export interface OpenChunk<F extends HeldFile = FileHandle> {
  readonly fh: F;
  /** Every block's checksum of the chunk at `size` bytes: `load`ed once, then from memory. */
  checksums(size: number, load: () => Promise<number[]>): Promise<number[]>;
}

interface Entry<F extends HeldFile> {
  path: string;
  file: Promise<F>;
  checksums: { size: number; sums: Promise<number[]> } | null;
  /** Operations using the file now: a forgotten entry is closed when the last one ends. */
  users: number;
  forgotten: boolean;
  /** performance.now() of its last use. */
  usedAt: number;
}

const ignore = (): void => undefined;

/**
 * The files of recently used chunks, kept open (read-write for the chunkserver, read-only for a
 * reader beside it) so that a read or write costs a pread or pwrite and not an open and a close,
 * and their checksums, so that a read need not read them from the file too.
 * A bounded LRU keyed by chunk handle (or, for a reader of several chunkservers' files, by path).
 *
 * The owner (ChunkStore) must forget a chunk whenever its file may stop being the one held
 * open: delete, a lost chunk or data directory; and drop its checksums on every write and
 * truncate (the file stays the same).
 * Any error while using an entry forgets it too, so a retry opens the file afresh. Files are
 * closed only once no operation uses them.
 */
export class OpenChunkFiles<Key = number, F extends HeldFile = FileHandle> {
  /** Oldest use first. */
  private readonly entries = new Map<Key, Entry<F>>();

  constructor(
    private readonly capacity: number,
    /** How files are opened ('r+' for the chunkserver, 'r' for a reader beside it), unless use() says otherwise. */
    private readonly openFile: Opener<F>,
  ) {}

  /** Whether a file is held open under `key`. */
  holds(key: Key): boolean {
    return this.entries.has(key);
  }

  /** Runs `fn` on the chunk's file (`path`), opening it (with `open`) if not held. */
  async use<T>(handle: Key, path: string, fn: (open: OpenChunk<F>) => Promise<T>, open: Opener<F> = this.openFile): Promise<T> {
    const entry = this.acquire(handle, path, open);
    try {
      const fh = await entry.file;
      return await fn({
        fh,
        // Keyed by size too: checksums of another size than the caller's are never used.
        checksums: (size, load) => {
          if (entry.checksums?.size !== size) entry.checksums = { size, sums: load() };
          return entry.checksums.sums;
        },
      });
    } catch (err) {
      this.forget(handle, entry);
      throw err;
    } finally {
      entry.users--;
      if (entry.forgotten && entry.users === 0) close(entry);
    }
  }

  /** The chunk's file is about to change in place: their checksums must be read again. */
  dropChecksums(handle: Key): void {
    const entry = this.entries.get(handle);
    if (entry) entry.checksums = null;
  }

  /** Stops holding the chunk's file (closed now, or when the operations using them end). */
  forget(handle: Key, only?: Entry<F>): void {
    const entry = this.entries.get(handle);
    if (!entry || (only && entry !== only)) return;
    this.entries.delete(handle);
    entry.forgotten = true;
    if (entry.users === 0) close(entry);
  }

  forgetAll(): void {
    for (const handle of [...this.entries.keys()]) this.forget(handle);
  }

  /** Stops holding the files not used for `ms`. */
  forgetUnused(ms: number): void {
    const before = performance.now() - ms;
    for (const [handle, entry] of this.entries) {
      if (entry.usedAt >= before) break; // oldest use first: the rest are newer
      this.forget(handle);
    }
  }

  /** Holds the file of a chunk its creator has just opened (ChunkFile.create). */
  adopt(handle: Key, path: string, fh: F): void {
    this.forget(handle);
    this.insert(handle, { path, file: Promise.resolve(fh), checksums: null, users: 0, forgotten: false, usedAt: performance.now() });
  }

  private acquire(handle: Key, path: string, open: Opener<F>): Entry<F> {
    let entry = this.entries.get(handle);
    if (entry && entry.path !== path) this.forget(handle); // the chunk moved directory
    else if (entry) this.entries.delete(handle); // re-inserted below: the most recently used
    if (!entry || entry.forgotten) {
      entry = { path, file: open(path), checksums: null, users: 0, forgotten: false, usedAt: 0 };
      entry.file.catch(ignore); // its user sees the error
    }
    this.insert(handle, entry);
    entry.users++;
    entry.usedAt = performance.now();
    return entry;
  }

  /** `entry` as the most recently used, the oldest closed past the capacity. */
  private insert(handle: Key, entry: Entry<F>): void {
    this.entries.set(handle, entry);
    for (const [oldest] of this.entries) {
      if (this.entries.size <= this.capacity) break;
      this.forget(oldest);
    }
  }
}

function close(entry: Entry<HeldFile>): void {
  void entry.file.then((fh) => fh.close()).catch(ignore);
}
