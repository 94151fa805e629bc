import type { DirLease } from '../../generated/chunkfs/master/DirLease';

/** How long a directory lease lasts after its grant or last renewal (ms). */
export const DIR_LEASE_MS = 1000;
/** Grants between sweeps of expired leases (the table stays bounded by the recent ones). */
const SWEEP_EVERY = 1024;

interface Held {
  session: number;
  /** performance.now() when it runs out */
  expiresAt: number;
  /** set once another session waits for it (no more renewals); resolves when the holder ends it */
  recalled: { ended: Promise<void>; end: () => void } | null;
}

/** Asks session `holder` to give up its lease on `dir` (ReplyBatch.recalled_dirs). */
export type Recall = (holder: number, dir: number) => void;

/** What one change did to one directory's entries. */
export interface DirChange {
  dir: number;
  added?: string;
  removed?: string;
}

/**
 * The master's side of directory leases (proto/master.proto, DirLease): which session may answer
 * lookups of absent names in which directory from what it knows, and until when. A session
 * gets one with a directory it makes and keeps it while it goes on changing that directory.
 * Another session's change to it recalls it and waits until the holder gives it up (end) or
 * it runs out: a holder that does not answer costs at most DIR_LEASE_MS. A master that just
 * started knows no leases, so its first changes wait until any lease of the master before has
 * run out.
 */
export class DirLeases {
  private readonly held = new Map<number, Held>();
  private grants = 0;
  /** performance.now() before which a lease granted by a previous master may still run. */
  private readonly quietUntil: number;

  /** `afterAnother`: a master may have run before this one (its leases are waited out). */
  constructor(readonly leaseMs = DIR_LEASE_MS, afterAnother = true) {
    // performance.now() counts from this process's start, and a previous master ended before it.
    this.quietUntil = afterAnother ? leaseMs : 0;
  }

  /**
   * Before `session` changes the entries of `dirs`: recalls other sessions' leases on them and
   * resolves once none is left (undefined when none is held: the change goes on in this turn).
   */
  beforeChange(dirs: number[], session: number, recall: Recall): Promise<void> | undefined {
    const now = performance.now();
    const quiet = now < this.quietUntil;
    let until = quiet ? this.quietUntil : 0;
    const ended: Promise<void>[] = [];
    for (const dir of dirs) {
      const h = this.held.get(dir);
      if (!h || h.session === session) continue;
      if (h.expiresAt <= now) {
        this.held.delete(dir);
        continue;
      }
      if (!h.recalled) {
        let end = (): void => undefined;
        h.recalled = { ended: new Promise((resolve) => (end = resolve)), end };
        recall(h.session, dir);
      }
      ended.push(h.recalled.ended);
      until = Math.max(until, h.expiresAt);
    }
    if (until <= now) return undefined;
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.ceil(until - now));
      if (!quiet) {
        void Promise.all(ended).then(() => {
          clearTimeout(timer);
          resolve();
        });
      }
    });
  }

  /** `session` gave up its leases on `dirs` (after a recall). */
  end(dirs: number[], session: number): void {
    for (const dir of dirs) {
      const h = this.held.get(dir);
      if (h?.session !== session) continue;
      this.held.delete(dir);
      h.recalled?.end();
    }
  }

  /**
   * After `session` changed directories (`changes`), and made `made` if it asked for a lease
   * on it: the leases to tell it of. A lease it holds is renewed, or told ended once recalled or
   * run out. Of a directory it holds no lease on, nothing is said: what it may still know of one
   * it gave up or that ran out is gone already (a recall is answered once forgotten, and a lease
   * runs out at the client first).
   */
  changed(session: number, changes: DirChange[], made?: number): DirLease[] {
    const now = performance.now();
    const told = new Map<number, DirLease>();
    for (const { dir, added, removed } of changes) {
      const h = this.held.get(dir);
      if (h?.session !== session) continue;
      let lease = told.get(dir);
      if (!lease) {
        const renewed = h.recalled === null && h.expiresAt > now;
        if (renewed) h.expiresAt = now + this.leaseMs;
        lease = { dir, ms: renewed ? this.leaseMs : 0, added: [], removed: [] };
        told.set(dir, lease);
      }
      if (added !== undefined) lease.added!.push(added);
      if (removed !== undefined) lease.removed!.push(removed);
    }
    if (made !== undefined) {
      this.held.set(made, { session, expiresAt: now + this.leaseMs, recalled: null });
      told.set(made, { dir: made, ms: this.leaseMs, fresh: true });
      if (++this.grants % SWEEP_EVERY === 0) this.sweep(now);
    }
    return [...told.values()];
  }

  private sweep(now: number): void {
    for (const [dir, h] of this.held) if (h.expiresAt <= now) this.held.delete(dir);
  }
}
