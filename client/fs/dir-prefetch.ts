import { performance } from 'perf_hooks';

/** Misses in a row, in one directory, for names that exist, before its listing is fetched. */
const STREAK = 2;

/**
 * Decides when a directory's listing, which carries every entry's attributes, is worth
 * fetching into the attribute cache: when the stats that miss the cache keep finding existing
 * names in the same directory (ls -l, find, rm -r, a program stat-ing its files one by one),
 * one listing answers the rest of them instead of one master round trip each. Misses for
 * missing names (creating files) never trigger it, and a directory is fetched at most once per
 * `periodMs` (the attribute cache's lifetime), so a huge directory whose listing is cut short
 * is not fetched over and over.
 */
export class DirPrefetch {
  private streakDir = '';
  private streak = 0;
  private readonly fetchedAt = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(
    private readonly periodMs: number,
    /** Fetches the listing of `dir` into the cache. */
    private readonly fetch: (dir: string) => Promise<void>,
  ) {}

  /** The listing of `dir` being fetched now, to wait for before asking the master for one name. */
  pending(dir: string): Promise<void> | undefined {
    return this.inFlight.get(dir);
  }

  /** A stat of a name in `dir` missed the cache and the master answered it (`found`: it exists). */
  missed(dir: string, found: boolean): void {
    if (!found) {
      this.streak = 0;
      return;
    }
    this.streak = dir === this.streakDir ? this.streak + 1 : 1;
    this.streakDir = dir;
    const now = performance.now();
    if (this.streak < STREAK || this.inFlight.has(dir) || now - (this.fetchedAt.get(dir) ?? -Infinity) < this.periodMs) return;
    if (this.fetchedAt.size > 1000) this.fetchedAt.clear(); // bounded; only recent ones matter
    this.fetchedAt.set(dir, now);
    const fetching = this.fetch(dir).catch(() => undefined).finally(() => this.inFlight.delete(dir));
    this.inFlight.set(dir, fetching);
  }
}
