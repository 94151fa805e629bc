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
  private readonly entries = new Map<string, { attr: Attr; atMs: number }>();

  constructor(private readonly ttlMs: number) {}

  get(path: string): Attr | null {
    const e = this.entries.get(path);
    if (!e) return null;
    if (Date.now() - e.atMs < this.ttlMs) return e.attr;
    this.entries.delete(path);
    return null;
  }

  set(path: string, attr: Attr): void {
    if (this.ttlMs <= 0) return;
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear(); // bounded memory; refilled on demand
    this.entries.set(path, { attr, atMs: Date.now() });
  }

  delete(path: string): void {
    this.entries.delete(path);
  }

  clear(): void {
    this.entries.clear();
  }
}

/** Paths cached at most (about 200 bytes each). */
const MAX_ENTRIES = 100_000;
