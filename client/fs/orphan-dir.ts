import { randomBytes } from 'crypto';
import { posix } from 'path';
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
export const ORPHANS = `/${ORPHANS_NAME}`;
const HIDDEN_PREFIX = '.chunkfs-hidden-';
const MARKER_PREFIX = '.chunkfs-mount-';

/**
 * ORPHANS, and the removal of what a mount that ended without unmounting (killed, its machine
 * lost) left there: its files unlinked while open would otherwise keep their chunks forever.
 * Each mount names its hidden files after a tag of its own and keeps a marker file,
 * `.chunkfs-mount-<tag>`, whose ctime it renews while it has one (every quarter of the grace).
 * A sweep, at start and once per grace, removes every hidden file whose mount's marker is
 * older than the grace or gone, and which has not changed for the grace itself, then the stale
 * markers. Ages are measured in the master's ctimes against the sweeper's own marker, just
 * renewed: the mounts' clocks play no part.
 */
export class OrphanDir {
  private readonly tag = randomBytes(6).toString('hex');
  private made: Promise<void> | null = null;
  /** Renews the marker once the mount has one (see hiddenName). */
  private renewing: NodeJS.Timeout | null = null;
  private readonly sweeping: NodeJS.Timeout;

  constructor(
    private readonly master: MasterClient,
    private readonly graceMs: number,
    /** Makes ORPHANS as the mount makes any directory (its caches follow). */
    private readonly makeDir: (path: string) => Promise<void>,
  ) {
    const sweep = () => void this.sweep().catch((err: Error) => log.debug(`sweeping ${ORPHANS}: ${err.message}`));
    sweep();
    this.sweeping = setInterval(sweep, graceMs);
    this.sweeping.unref();
  }

  /** A new hidden name in ORPHANS, once it exists with this mount's marker in it. */
  async hiddenName(): Promise<string> {
    try {
      await (this.made ??= this.make());
    } catch (err) {
      this.made = null; // looked for again next time
      throw err;
    }
    return posix.join(ORPHANS, `${HIDDEN_PREFIX}${this.tag}-${randomBytes(6).toString('hex')}`);
  }

  /** A hidden name beside `path`, for when ORPHANS cannot be used (a file of that name). */
  besideName(path: string): string {
    return posix.join(posix.dirname(path), `${HIDDEN_PREFIX}${this.tag}-${randomBytes(6).toString('hex')}`);
  }

  /** Stops renewing and removes the marker (a clean unmount, after the hidden files went). */
  async close(): Promise<void> {
    clearInterval(this.sweeping);
    if (!this.renewing) return;
    clearInterval(this.renewing);
    this.renewing = null;
    await this.master.unlink(this.marker).catch(() => undefined);
  }

  private get marker(): string {
    return posix.join(ORPHANS, `${MARKER_PREFIX}${this.tag}`);
  }

  /** ORPHANS (one that is not root's own, 0700, is not trusted) and this mount's marker in it. */
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

  /** Creates or renews the marker; its ctime, the master's now. */
  private async renew(): Promise<number> {
    await this.master.create(this.marker, 0o600, false);
    const { ctimeMs } = await this.master.setattr(this.marker, { mtimeMs: Date.now() });
    if (!this.renewing) {
      const renew = () => void this.renew().catch((err: Error) => log.warn(`renewing ${this.marker}: ${err.message}`));
      this.renewing = setInterval(renew, this.graceMs / 4);
      this.renewing.unref();
    }
    return ctimeMs;
  }

  /** Removes what mounts gone for the grace left in ORPHANS (nothing to do when there is none). */
  async sweep(): Promise<void> {
    const entries = await this.master.readdirAll(ORPHANS).catch((err: unknown) => {
      if (toFsError(err).code === 'ENOENT') return [];
      throw err;
    });
    if (entries.length === 0) return;
    const now = await this.renew();
    const old = (e: DirEntry) => now - e.attr.ctimeMs >= this.graceMs;
    const markers = entries.filter((e) => e.name.startsWith(MARKER_PREFIX));
    const live = new Set(markers.filter((e) => !old(e)).map((e) => e.name.slice(MARKER_PREFIX.length)));
    const doomed = entries.filter((e) => e.name.startsWith(HIDDEN_PREFIX) && old(e) && !live.has(e.name.slice(HIDDEN_PREFIX.length).split('-')[0]));
    for (const { name } of [...doomed, ...markers.filter(old)]) {
      await this.master.unlink(posix.join(ORPHANS, name)).catch((err: Error) => log.debug(`removing ${name}: ${err.message}`));
    }
    if (doomed.length > 0) log.info(`removed ${doomed.length} files left unlinked while open by mounts gone for over ${this.graceMs / 1000} s`);
  }
}
