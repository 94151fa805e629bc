import type { Attr } from '../../server/master/inode';

/**
 * Attributes of paths as the master last answered them, for at most `ttlMs`: what makes a
 * stat storm (ls -l, find, the kernel's getattr after each lookup) cost no round trips. A
 * change made through the mount forgets what it makes stale (the path and its directory; every
 * path when the inode has other names or a subtree moves; a flush of written data landing
 * counts), and every open asks the master afresh, so
 * close-to-open consistency across mounts holds; a stat may show another mount's change up to
 * `ttlMs` late, like NFS's attribute cache.
 */
export class AttrCache {
  /** `fresh` false: forgotten (or expired), kept only for lastKnown(). */
  private readonly entries = new Map<string, { attr: Attr; atMs: number; fresh: boolean }>();

  constructor(private readonly ttlMs: number) {}

  get(path: string): Attr | null {
    const e = this.entries.get(path);
    if (!e || !e.fresh) return null;
    if (Date.now() - e.atMs < this.ttlMs) return e.attr;
    e.fresh = false;
    return null;
  }

  /**
   * The attributes last cached for `path`, however old (null after clear()): what a change
   * needs to know which cached paths it makes stale (a file with one link, a directory).
   */
  lastKnown(path: string): Attr | null {
    return this.entries.get(path)?.attr ?? null;
  }

  set(path: string, attr: Attr): void {
    if (this.ttlMs <= 0) return;
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear(); // bounded memory; refilled on demand
    this.entries.set(path, { attr, atMs: Date.now(), fresh: true });
  }

  delete(path: string): void {
    const e = this.entries.get(path);
    if (e) e.fresh = false;
  }

  clear(): void {
    this.entries.clear();
  }
}

/** Paths cached at most (about 200 bytes each). */
const MAX_ENTRIES = 100_000;
