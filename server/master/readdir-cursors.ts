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
 * scanning for the last returned name, which is O(n) but rare.
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
    const sep = cookie.indexOf(':');
    const lastName = sep >= 0 ? cookie.slice(sep + 1) : '';
    if (sep < 0 || !children.has(lastName)) {
      throw new FsError('EINVAL', 'readdir cookie expired and its entry is gone; restart the listing');
    }
    const it = children.entries();
    for (let r = it.next(); !r.done; r = it.next()) if (r.value[0] === lastName) break;
    return it;
  }

  /** Parks `it` and returns the cookie that resumes it after `lastName`. */
  park(dir: Inode, lastName: string, it: ChildIterator): string {
    const cookie = `${this.nextId++}:${lastName}`;
    const now = Date.now();
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
