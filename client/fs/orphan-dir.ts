import { randomBytes } from 'crypto';
import { posix } from 'path';
import { performance } from 'perf_hooks';
import { FsError, toFsError } from '../../server/common/fs-error';
import { logger } from '../../server/common/log';
import { S_IFDIR } from '../../server/master/inode';
import type { DirEntry } from '../../server/master/namespace';
import type { MasterClient } from '../master-client';

const log = logger('mount');

export const ORPHANS_NAME = '.chunkfs-orphans';
/**
 * Where files unlinked while open wait for their last close (see PosixFs.hide): one directory
 * for the whole cluster, left out of the root's listing.
 */
const ORPHANS = `/${ORPHANS_NAME}`;
const HIDDEN_PREFIX = '.chunkfs-hidden-';
const MARKER_PREFIX = '.chunkfs-mount-';
/** A mount's tag; a hidden name's tail is its mount's tag and a random part. */
const TAG = /^[0-9a-f]{12}$/;
const TAGGED = /^([0-9a-f]{12})-[0-9a-f]{12}$/;
/** Renewals of its own marker a mount must have made while another's stood still. */
const RENEWALS_WITNESSED = 3;
/**
 * A gap between a mount's own renewals longer than this share of the grace breaks its witness
 * (they come every quarter: one late or failed is no break).
 */
const WITNESS_GAP = 3 / 4;
/**
 * How long after a break the others may need to reach the master again (their channels retry
 * every second, then a session and two calls): not counted towards the grace.
 */
const REACH_MS = 5_000;

/** What a sweep saw of another mount's marker: its ctime (null: none), since when (ms, monotonic). */
interface Watched {
  ctimeMs: number | null;
  sinceMs: number;
  renewalsThen: number;
}

/**
 * ORPHANS, and the removal of what a mount that ended without unmounting (killed, its machine
 * lost) left there: its files unlinked while open would otherwise keep their chunks forever.
 * Each mount names its hidden files after a tag of its own and keeps a marker file there,
 * `.chunkfs-mount-<tag>`, whose ctime it renews every quarter of the grace. Every mount sweeps
 * twice per grace and removes the hidden files (and marker) of a tag whose marker it saw stand
 * still, or absent, for a whole grace by its own monotonic clock while it renewed its own marker
 * at least RENEWALS_WITNESSED times, never more than WITNESS_GAP of a grace apart: so the master
 * was up for the others to renew theirs too. A master outage, or a clock jump, kills nobody: the
 * grace counts again REACH_MS after the sweeper's first renewal after it. A mount cut off from
 * the master for longer than the grace while others reach it loses its hidden files, as a lease
 * holder would.
 */
export class OrphanDir {
  private readonly tag = randomBytes(6).toString('hex');
  private made: Promise<void> | null = null;
  private renewing: NodeJS.Timeout | null = null;
  /** The renewal in flight. */
  private renewed: Promise<void> | null = null;
  private renewals = 0;
  /**
   * Monotonic ms of the last renewal made, and of the first of the run it ends (gaps up to
   * WITNESS_GAP), with the count of renewals before that run.
   */
  private renewedAtMs = -Infinity;
  private runSinceMs = Infinity;
  private renewalsBeforeRun = 0;
  private readonly watched = new Map<string, Watched>();
  private readonly sweeping: NodeJS.Timeout;
  private swept: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly master: MasterClient,
    private readonly graceMs: number,
    /** Makes ORPHANS as the mount makes any directory (its caches follow). */
    private readonly makeDir: (path: string) => Promise<void>,
  ) {
    const sweep = () => {
      this.swept ??= this.sweep()
        .catch((err: Error) => log.warn(`sweeping ${ORPHANS}: ${err.message}`))
        .finally(() => (this.swept = null));
    };
    sweep();
    this.sweeping = setInterval(sweep, graceMs / 2);
    this.sweeping.unref();
  }

  /**
   * A new hidden name in ORPHANS, once it exists with this mount's marker in it; after a
   * failure (of this or of the rename into it), forget() has it looked for again.
   */
  async hiddenName(): Promise<string> {
    await (this.made ??= this.make());
    return posix.join(ORPHANS, this.newName());
  }

  /** ORPHANS is looked for again next time (making it, or a rename into it, failed). */
  forget(): void {
    this.made = null;
  }

  /** A hidden name beside `path`, for when ORPHANS cannot be used (a file of that name). */
  besideName(path: string): string {
    return posix.join(posix.dirname(path), this.newName());
  }

  /** Stops sweeping and renewing and removes the marker (a clean unmount, after the hidden files went). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeping);
    if (this.renewing) clearInterval(this.renewing);
    await this.swept;
    await this.renewed;
    if (this.renewing) await this.master.unlink(this.marker).catch(() => undefined);
    this.renewing = null;
  }

  private newName(): string {
    return `${HIDDEN_PREFIX}${this.tag}-${randomBytes(6).toString('hex')}`;
  }

  private get marker(): string {
    return posix.join(ORPHANS, `${MARKER_PREFIX}${this.tag}`);
  }

  /**
   * ORPHANS (one that is not root's own, 0700, is not trusted) and this mount's marker in it;
   * a failed marker is tried again at the next renewal, not failed to the unlink.
   */
  private async make(): Promise<void> {
    try {
      await this.makeDir(ORPHANS);
    } catch (err) {
      if (toFsError(err).code !== 'EEXIST') throw err;
      const attr = await this.master.getattr(ORPHANS);
      if (attr.mode !== (S_IFDIR | 0o700) || attr.uid !== 0) throw new FsError('EEXIST', `${ORPHANS} is not root's own directory`);
    }
    await this.renew();
  }

  /** Creates or renews the marker (its ctime moves), and keeps renewing it from then on. */
  private renew(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (!this.renewing) {
      this.renewing = setInterval(() => void this.renew(), this.graceMs / 4);
      this.renewing.unref();
    }
    return (this.renewed ??= (async () => {
      try {
        await this.master.create(this.marker, 0o600, false);
        await this.master.setattr(this.marker, { mtimeMs: Date.now() });
        const now = performance.now();
        if (now - this.renewedAtMs > this.graceMs * WITNESS_GAP) {
          this.runSinceMs = now;
          this.renewalsBeforeRun = this.renewals;
        }
        this.renewedAtMs = now;
        this.renewals++;
      } catch (err) {
        log.warn(`renewing ${this.marker}: ${(err as Error).message}`);
      } finally {
        this.renewed = null;
      }
    })());
  }

  /** Removes what mounts gone for the grace left in ORPHANS (nothing to do when there is none). */
  private async sweep(): Promise<void> {
    const entries = await this.master.readdirAll(ORPHANS).catch((err: unknown) => {
      if (toFsError(err).code === 'ENOENT') return [];
      throw err;
    });
    const others = new Map<string, DirEntry[]>(); // tag -> its hidden files
    const markers = new Map<string, DirEntry>();
    for (const e of entries) {
      const tag = tagOf(e.name);
      if (tag === null || tag === this.tag) continue;
      if (e.name.startsWith(MARKER_PREFIX)) markers.set(tag, e);
      else others.set(tag, [...(others.get(tag) ?? []), e]);
    }
    if (others.size > 0 && !this.renewing) await this.renew(); // this mount's witness
    const now = performance.now();
    // Since when this mount has witnessed, renewing its marker without a break (Infinity: not now).
    const witnessSinceMs = now - this.renewedAtMs > this.graceMs * WITNESS_GAP ? Infinity : this.runSinceMs + REACH_MS;
    const dead: string[] = [];
    for (const tag of new Set([...others.keys(), ...markers.keys()])) {
      const ctimeMs = markers.get(tag)?.attr.ctimeMs ?? null;
      const seen = this.watched.get(tag);
      if (!seen || seen.ctimeMs !== ctimeMs) this.watched.set(tag, { ctimeMs, sinceMs: now, renewalsThen: this.renewals });
      else if (
        now - Math.max(seen.sinceMs, witnessSinceMs) >= this.graceMs &&
        this.renewals - Math.max(seen.renewalsThen, this.renewalsBeforeRun) >= RENEWALS_WITNESSED
      ) {
        dead.push(tag);
      }
    }
    for (const tag of this.watched.keys()) if (!others.has(tag) && !markers.has(tag)) this.watched.delete(tag);
    if (this.closed) return;
    for (const tag of dead) {
      const files = others.get(tag) ?? [];
      for (const { name } of [...files, ...(markers.has(tag) ? [markers.get(tag)!] : [])]) {
        await this.master.unlink(posix.join(ORPHANS, name)).catch((err: Error) => log.warn(`removing ${name}: ${err.message}`));
      }
      this.watched.delete(tag);
      if (files.length > 0) log.info(`removed ${files.length} files that mount ${tag}, gone for over ${this.graceMs / 1000} s, left unlinked while open`);
    }
  }
}

/** The mount tag in a hidden name or marker of ORPHANS; null for anything else. */
function tagOf(name: string): string | null {
  if (name.startsWith(MARKER_PREFIX)) return TAG.test(name.slice(MARKER_PREFIX.length)) ? name.slice(MARKER_PREFIX.length) : null;
  if (!name.startsWith(HIDDEN_PREFIX)) return null;
  return TAGGED.exec(name.slice(HIDDEN_PREFIX.length))?.[1] ?? null;
}
