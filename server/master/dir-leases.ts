import type { DirLease } from '../../generated/chunkfs/master/DirLease';

/** How long a directory lease lasts after its grant or last renewal (ms). */
export const DIR_LEASE_MS = 1000;
/** Grants between sweeps of expired leases (the table stays bounded by the recent ones). */
const SWEEP_EVERY = 1024;

interface Held {
  session: number;
  /** performance.now() when it runs out */
  expiresAt: number;
  /** another session waits for it to run out: no more renewals */
  recalled: boolean;
}

/** What one change did to one directory's entries. */
export interface DirChange {
  dir: number;
  added?: string;
  removed?: string;
}

/**
 * The master's side of directory leases (proto/master.proto, DirLease): which session may answer
 * lookups of absent names in which directory from what it knows, and until when. A session
 * gets one with a directory it makes and keeps it while it goes on changing that directory;
 * another session's change to it waits until the lease runs out, which bounds the wait by
 * DIR_LEASE_MS without the master asking the holder anything. A master that just started knows
 * no leases, so its first changes wait until any lease of the master before has run out.
 */
export class DirLeases {
  private readonly held = new Map<number, Held>();
  private grants = 0;
  /** performance.now() before which a lease granted by a previous master may still run. */
  private readonly quietUntil: number;

  constructor(readonly leaseMs = DIR_LEASE_MS) {
    // performance.now() counts from this process's start, and a previous master ended before it.
    this.quietUntil = leaseMs;
  }

  /**
   * Before `session` changes the entries of `dirs`: resolves once no other session holds a
   * lease on any of them (undefined when none does: the change goes on in this turn).
   */
  beforeChange(dirs: number[], session: number): Promise<void> | undefined {
    const now = performance.now();
    let until = now < this.quietUntil ? this.quietUntil : 0;
    for (const dir of dirs) {
      const h = this.held.get(dir);
      if (!h || h.session === session) continue;
      if (h.expiresAt <= now) this.held.delete(dir);
      else {
        h.recalled = true;
        until = Math.max(until, h.expiresAt);
      }
    }
    if (until <= now) return undefined;
    return new Promise((resolve) => setTimeout(resolve, Math.ceil(until - now)));
  }

  /**
   * After `session` changed directories (`changes`), and made `made` if it asked for a lease
   * on it: the leases to tell it of. A lease it holds is renewed; a directory it holds none on
   * is told ended, so the session forgets what it knew of it.
   */
  changed(session: number, changes: DirChange[], made?: number): DirLease[] {
    const now = performance.now();
    const told = new Map<number, DirLease>();
    for (const { dir, added, removed } of changes) {
      let lease = told.get(dir);
      if (!lease) {
        const h = this.held.get(dir);
        const renewed = h !== undefined && h.session === session && !h.recalled && h.expiresAt > now;
        if (renewed) h.expiresAt = now + this.leaseMs;
        lease = { dir, ms: renewed ? this.leaseMs : 0, added: [], removed: [] };
        told.set(dir, lease);
      }
      if (added !== undefined) lease.added!.push(added);
      if (removed !== undefined) lease.removed!.push(removed);
    }
    if (made !== undefined) {
      this.held.set(made, { session, expiresAt: now + this.leaseMs, recalled: false });
      told.set(made, { dir: made, ms: this.leaseMs, fresh: true });
      if (++this.grants % SWEEP_EVERY === 0) this.sweep(now);
    }
    return [...told.values()];
  }

  /** Leases held now (tests, status). */
  get size(): number {
    return this.held.size;
  }

  private sweep(now: number): void {
    for (const [dir, h] of this.held) if (h.expiresAt <= now) this.held.delete(dir);
  }
}
