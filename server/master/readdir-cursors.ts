import { performance } from 'perf_hooks';
import { FsError } from '../common/fs-error';
import type { Inode } from './inode';

type ChildIterator = IterableIterator<[string, Inode]>;

/** How many unfinished listings are remembered, and for how long. */
const MAX_CURSORS = 4096;
const CURSOR_TTL_MS = 5 * 60_000;

/**
 * Paged readdir over a directory's Map without re-scanning it for every page: the live Map
 * iterator of an unfinished listing is parked under a cookie. Map iterators stay valid while
 * the Map changes (removed entries are skipped, added ones appear at the end), which gives the
 * usual readdir guarantees under concurrent changes. A cookie the cache forgot is resumed by
 * scanning for the last returned entry, identified by name *and* inode number: if that name
 * now denotes another inode (deleted and re-created, so it moved to the end), resuming after it
 * would silently skip entries, so the listing is refused with EINVAL instead.
 */
export class ReaddirCursors {
  private nextId = 1;
  private readonly parked = new Map<string, { dir: Inode; it: ChildIterator; at: number }>();

  take(dir: Inode, cookie: string): ChildIterator {
    const children = dir.children!;
    if (cookie === '') return children.entries();
    const hit = this.parked.get(cookie);
    if (hit && hit.dir === dir) {
      this.parked.delete(cookie);
      return hit.it;
    }
    const m = /^\d+:(\d+):(.*)$/s.exec(cookie);
    const last = m ? children.get(m[2]) : undefined;
    if (!m || !last || last.ino !== Number(m[1])) {
      throw new FsError('EINVAL', 'readdir cookie expired and its entry is gone; restart the listing');
    }
    const it = children.entries();
    for (let r = it.next(); !r.done; r = it.next()) if (r.value[0] === m[2]) break;
    return it;
  }

  /** Parks `it` and returns the cookie that resumes it after the entry `last`. */
  park(dir: Inode, last: [string, Inode], it: ChildIterator): string {
    const cookie = `${this.nextId++}:${last[1].ino}:${last[0]}`;
    const now = performance.now();
    this.parked.set(cookie, { dir, it, at: now });
    if (this.parked.size > MAX_CURSORS) {
      for (const [key, c] of this.parked) {
        if (this.parked.size <= MAX_CURSORS && now - c.at < CURSOR_TTL_MS) break;
        this.parked.delete(key); // oldest first: Map keeps insertion order
      }
    }
    return cookie;
  }
}
