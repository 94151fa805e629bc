import { performance } from 'perf_hooks';
import type { ListingPage } from '../../server/common/dir-listing';
import type { Attr } from '../../server/master/inode';

interface Entry {
  attr: Attr;
  /** when it was cached, and in which order (a listing newer than an entry wins) */
  atMs: number;
  seq: number;
  /** false: forgotten (or expired), kept only for lastKnown() */
  fresh: boolean;
}

interface Listed {
  page: ListingPage;
  /** name -> position in page, built at the first look into the listing */
  index: Map<string, number> | null;
  atMs: number;
  seq: number;
}

/**
 * Attributes of paths as the master last answered them, for at most `ttlMs`: what makes a
 * stat storm (ls -l, find, the kernel's getattr after each lookup) cost no round trips. A
 * change made through the mount forgets what it makes stale (the path and its directory; every
 * path when the inode has other names or a subtree moves; a flush of written data landing
 * counts), and every open asks the master afresh, so
 * close-to-open consistency across mounts holds; a stat may show another mount's change up to
 * `ttlMs` late, like NFS's attribute cache.
 *
 * A directory's listing is kept as the page it came in, and an entry's attributes are taken
 * from it when first asked for: listing 1,000 names then costs no 1,000 objects up front.
 */
export class AttrCache {
  private readonly entries = new Map<string, Entry>();
  /** directory path -> its last listing */
  private readonly listings = new Map<string, Listed>();
  private listedNames = 0;
  private seq = 0;

  constructor(private readonly ttlMs: number) {}

  get(path: string): Attr | null {
    const e = this.current(path);
    if (!e || !e.fresh) return null;
    if (performance.now() - e.atMs < this.ttlMs) return e.attr;
    e.fresh = false;
    return null;
  }

  /**
   * The attributes last cached for `path`, however old (null after clear()): what a change
   * needs to know which cached paths it makes stale (a file with one link, a directory).
   */
  lastKnown(path: string): Attr | null {
    return this.current(path)?.attr ?? null;
  }

  set(path: string, attr: Attr): void {
    if (this.ttlMs <= 0) return;
    this.bound(1);
    this.entries.set(path, { attr, atMs: performance.now(), seq: ++this.seq, fresh: true });
  }

  /** The attributes of every entry of `dir` as `page` lists them (newer than what was cached). */
  setListing(dir: string, page: ListingPage): void {
    if (this.ttlMs <= 0) return;
    this.bound(page.length);
    const old = this.listings.get(dir);
    if (old) this.listedNames -= old.page.length;
    this.listings.set(dir, { page, index: null, atMs: performance.now(), seq: ++this.seq });
    this.listedNames += page.length;
  }

  delete(path: string): void {
    const e = this.current(path);
    if (e) e.fresh = false;
  }

  clear(): void {
    this.entries.clear();
    this.listings.clear();
    this.listedNames = 0;
  }

  /** Memory stays bounded: when full, everything goes (refilled on demand). */
  private bound(more: number): void {
    if (this.entries.size + this.listedNames + more > MAX_ENTRIES) this.clear();
  }

  /** The entry of `path`, taken from its directory's listing when that is newer. */
  private current(path: string): Entry | undefined {
    const e = this.entries.get(path);
    if (this.listings.size === 0) return e;
    const slash = path.lastIndexOf('/');
    if (slash < 0 || path.length === 1) return e;
    const listed = this.listings.get(slash === 0 ? '/' : path.slice(0, slash));
    if (!listed || (e && e.seq >= listed.seq)) return e;
    listed.index ??= new Map(listed.page.names.map((name, i) => [name, i]));
    const i = listed.index.get(path.slice(slash + 1));
    if (i === undefined) return e;
    const fromListing = { attr: listed.page.attr(i), atMs: listed.atMs, seq: listed.seq, fresh: true };
    this.entries.set(path, fromListing);
    return fromListing;
  }
}

/** Paths cached at most (about 200 bytes each). */
const MAX_ENTRIES = 100_000;
