import type { DirLease__Output } from '../generated/chunkfs/master/DirLease';

/** Names a lease keeps at most: a directory growing past them is asked about like any other. */
const MAX_NAMES = 100_000;
/** Time between sweeps of leases that ran out (unless looked into again, they would stay), ms. */
const SWEEP_MS = 2000;

interface Known {
  /** every name in the directory */
  names: Set<string>;
  /** performance.now() when the lease runs out here (before it does at the master) */
  expiresAt: number;
}

/**
 * A session's side of directory leases (proto/master.proto, DirLease): every name in each
 * directory it holds a lease on, so that a lookup of a name it knows is absent needs no round
 * trip. A lease starts empty with a directory this session made, follows the changes this
 * session's replies report, and is dropped when a reply ends it, when the master recalls it,
 * when it runs out (counted from when the call went out, so it runs out here first), and when
 * anything makes what it knows doubtful (a change whose outcome is unknown, a broken connection).
 */
export class LeasedDirs {
  private readonly dirs = new Map<number, Known>();
  /**
   * Directories recalled, and when (performance.now()): a grant in the reply to a call sent
   * before then is stale (that reply can come after the recall: a new directory's is sent once
   * its log record is durable), and the master may already have gone on.
   */
  private readonly recalledAt = new Map<number, number>();
  private sweptAt = 0;

  constructor(
    /** How long a call can go unanswered (its deadline): recalls are remembered that long. */
    private readonly callDeadlineMs: number,
  ) {}

  /** True when `name` is known to be absent from directory `dir` (inode number). */
  absent(dir: number, name: string): boolean {
    const known = this.dirs.get(dir);
    if (!known) return false;
    if (performance.now() < known.expiresAt) return !known.names.has(name);
    this.dirs.delete(dir);
    return false;
  }

  /** The leases a reply carried; its call went out at `sentAt` (performance.now()). */
  apply(leases: DirLease__Output[], sentAt: number): void {
    const now = performance.now();
    if (now - this.sweptAt > SWEEP_MS) this.sweep(now);
    for (const lease of leases) {
      const dir = Number(lease.dir);
      const recalled = this.recalledAt.get(dir);
      const known = lease.fresh ? { names: new Set<string>(), expiresAt: 0 } : this.dirs.get(dir);
      // Not taken: an ended lease, a grant older than a recall of it, and a renewal of a lease
      // that lapsed here meanwhile (what it knew may be incomplete).
      const stale = lease.ms === 0 || (recalled !== undefined && sentAt <= recalled) || !known || (!lease.fresh && known.expiresAt <= now);
      if (stale || known.names.size + lease.added.length > MAX_NAMES) {
        this.dirs.delete(dir);
        continue;
      }
      for (const name of lease.removed) known.names.delete(name);
      for (const name of lease.added) known.names.add(name);
      known.expiresAt = Math.max(known.expiresAt, sentAt + lease.ms);
      this.dirs.set(dir, known);
    }
  }

  /**
   * Forgets the leases on `dirs` the master recalls, also grants for them still on their way;
   * the master may then be told they are given up.
   */
  recall(dirs: number[]): void {
    const now = performance.now();
    for (const dir of dirs) {
      this.dirs.delete(dir);
      this.recalledAt.set(dir, now);
    }
  }

  /** Forgets every lease. */
  clear(): void {
    this.dirs.clear();
  }

  private sweep(now: number): void {
    this.sweptAt = now;
    for (const [dir, known] of this.dirs) if (known.expiresAt <= now) this.dirs.delete(dir);
    for (const [dir, at] of this.recalledAt) if (now - at > this.callDeadlineMs) this.recalledAt.delete(dir);
  }

  /** Directories held now (tests). */
  get size(): number {
    return this.dirs.size;
  }
}
