import * as fs from 'fs';

type FileHandle = fs.promises.FileHandle;

/** A chunk's .data and .meta held open for reads and writes, with its checksums once read. */
export interface OpenChunk {
  readonly data: FileHandle;
  readonly meta: FileHandle;
  /** Every block's checksum of the chunk at `size` bytes: `load`ed once, then from memory. */
  checksums(size: number, load: () => Promise<number[]>): Promise<number[]>;
}

interface Entry {
  dataPath: string;
  files: Promise<[FileHandle, FileHandle]>;
  checksums: { size: number; sums: Promise<number[]> } | null;
  /** Operations using the files now: a forgotten entry is closed when the last one ends. */
  users: number;
  forgotten: boolean;
}

const ignore = (): void => undefined;

/**
 * The files of recently used chunks, kept open (read-write) so that a read or write costs a
 * pread or pwrite and not two opens and two closes, and their checksums, so that a read need
 * not read the .meta too.
 * A bounded LRU keyed by chunk handle.
 *
 * The owner (ChunkStore) must forget a chunk whenever its files may stop being the ones held
 * open: delete, a version change (the .meta is replaced by a rename), a lost chunk or data
 * directory; and drop its checksums on every write and truncate (the files stay the same).
 * Any error while using an entry forgets it too, so a retry opens the files afresh. Files are
 * closed only once no operation uses them.
 */
export class OpenChunkFiles {
  /** Oldest use first. */
  private readonly entries = new Map<number, Entry>();

  constructor(private readonly capacity: number) {}

  /** Runs `fn` on the chunk's files (`dataPath`, `metaPath`), opening them if not held. */
  async use<T>(handle: number, dataPath: string, metaPath: string, fn: (open: OpenChunk) => Promise<T>): Promise<T> {
    const entry = this.acquire(handle, dataPath, metaPath);
    try {
      const [data, meta] = await entry.files;
      return await fn({
        data,
        meta,
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

  /** The chunk's files are about to change in place: their checksums must be read again. */
  dropChecksums(handle: number): void {
    const entry = this.entries.get(handle);
    if (entry) entry.checksums = null;
  }

  /** Stops holding the chunk's files (closed now, or when the operations using them end). */
  forget(handle: number, only?: Entry): void {
    const entry = this.entries.get(handle);
    if (!entry || (only && entry !== only)) return;
    this.entries.delete(handle);
    entry.forgotten = true;
    if (entry.users === 0) close(entry);
  }

  forgetAll(): void {
    for (const handle of [...this.entries.keys()]) this.forget(handle);
  }

  /** Holds the files of a chunk its creator has just opened (ChunkFile.createWritten). */
  adopt(handle: number, dataPath: string, data: FileHandle, meta: FileHandle): void {
    this.forget(handle);
    this.insert(handle, { dataPath, files: Promise.resolve([data, meta]), checksums: null, users: 0, forgotten: false });
  }

  private acquire(handle: number, dataPath: string, metaPath: string): Entry {
    let entry = this.entries.get(handle);
    if (entry && entry.dataPath !== dataPath) this.forget(handle); // the chunk moved directory
    else if (entry) this.entries.delete(handle); // re-inserted below: the most recently used
    if (!entry || entry.forgotten) {
      entry = { dataPath, files: openBoth(dataPath, metaPath), checksums: null, users: 0, forgotten: false };
      entry.files.catch(ignore); // its user sees the error
    }
    this.insert(handle, entry);
    entry.users++;
    return entry;
  }

  /** `entry` as the most recently used, the oldest closed past the capacity. */
  private insert(handle: number, entry: Entry): void {
    this.entries.set(handle, entry);
    for (const [oldest] of this.entries) {
      if (this.entries.size <= this.capacity) break;
      this.forget(oldest);
    }
  }
}

async function openBoth(dataPath: string, metaPath: string): Promise<[FileHandle, FileHandle]> {
  const [data, meta] = await Promise.allSettled([fs.promises.open(dataPath, 'r+'), fs.promises.open(metaPath, 'r+')]);
  if (data.status === 'fulfilled' && meta.status === 'fulfilled') return [data.value, meta.value];
  for (const r of [data, meta]) if (r.status === 'fulfilled') void r.value.close().catch(ignore);
  throw data.status === 'rejected' ? data.reason : (meta as PromiseRejectedResult).reason;
}

function close(entry: Entry): void {
  void entry.files.then(([data, meta]) => Promise.all([data.close(), meta.close()])).catch(ignore);
}
