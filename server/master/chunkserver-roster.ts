import * as fs from 'fs';
import * as path from 'path';
import { logger } from '../common/log';

const log = logger('chunkservers');

/** The roster's file in a metadata directory. */
export const ROSTER_FILE = 'chunkservers.json';

/**
 * The ids of the chunkservers alive at the master's last change of them, in a file of its
 * metadata directory. Soft state, not logged: a master starting again uses it only to know
 * whom to wait for before it places, leases or locates chunks (ChunkserverRegistry.starting).
 * A missing or unreadable file is an empty roster: nobody is waited for.
 */
export class ChunkserverRoster {
  private readonly file: string;
  /** The ids to write next (the newest wins), and the writes under way. */
  private next: string[] | null = null;
  private writing: Promise<void> | null = null;

  constructor(metaDir: string) {
    this.file = path.join(metaDir, ROSTER_FILE);
  }

  load(): Set<string> {
    try {
      const ids: unknown = JSON.parse(fs.readFileSync(this.file, 'utf8'));
      if (Array.isArray(ids) && ids.every((id) => typeof id === 'string')) return new Set(ids);
      log.warn(`${this.file} is not a list of chunkserver ids: ignored`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn(`${this.file} unreadable, ignored: ${(err as Error).message}`);
    }
    return new Set();
  }

  /** Replaces the roster (written in the background, atomically: a new file renamed over it). */
  save(ids: string[]): void {
    this.next = [...ids].sort();
    this.writing ??= this.writeLoop();
  }

  /** Settles once every roster saved so far is on disk (or failed, with a warning). */
  async written(): Promise<void> {
    await this.writing;
  }

  /** Writes the newest roster until none is left; ends in the same turn as its last look. */
  private async writeLoop(): Promise<void> {
    try {
      for (let ids = this.next; ids !== null; ids = this.next) {
        this.next = null;
        const tmp = `${this.file}.new`; // not .tmp: the log purge removes those
        try {
          await fs.promises.writeFile(tmp, JSON.stringify(ids));
          await fs.promises.rename(tmp, this.file);
        } catch (err) {
          log.warn(`cannot write ${this.file}: ${(err as Error).message}`);
        }
      }
    } finally {
      this.writing = null;
    }
  }
}
