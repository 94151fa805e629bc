import { posix } from 'path';
import { BufferPool } from '../../server/common/buffer-pool';
import { checkFileSize, maxFileSize } from '../../server/common/file-size-limit';
import { FsError, toFsError } from '../../server/common/fs-error';
import { PERMISSION_BITS, S_IFDIR, S_IFMT, S_IFREG, type Attr } from '../../server/master/inode';
import type { AttrChanges } from '../../server/master/mutation';
import { checkXattrName } from '../../server/master/xattrs';
import type { ChunkClientPool } from '../chunk-client';
import { FileWriter } from '../file-writer';
import type { Caller, FsStats, MasterClient, RenameMode } from '../master-client';
import { MAX_LISTING_PAGE, type ListingPage } from '../../server/common/dir-listing';
import { logger } from '../../server/common/log';
import { AttrCache } from './attr-cache';
import { LOCATION_WINDOW } from './chunk-locations';
import { DirPrefetch } from './dir-prefetch';
import { OpenFile, type OpenFileTuning } from './open-file';
import { ORPHANS_NAME, OrphanDir } from './orphan-dir';
import { byCurrentName, ofSameFile } from './renamed-retry';
import { childPath } from '../paths';

const log = logger('mount');
/** Changes remembered for listings in flight (see keepListing): more meanwhile drop the listing. */
const FORGOTTEN_KEPT = 64;
const { dirname } = posix;

/** open(2) flags the file system acts on (Linux values). */
const O_ACCMODE = 0o3;
const O_RDONLY = 0o0;
const O_EXCL = 0o200;
const O_APPEND = 0o2000;
const O_TRUNC = 0o1000;

/** A utimens time: ms since the epoch, or UTIME_NOW / UTIME_OMIT. */
export type TimeChange = number | 'now' | 'omit';

export interface PosixFsOptions extends OpenFileTuning {
  /** Seconds the mount serves attributes from its cache (see AttrCache); 0: always ask. */
  attrCacheSec: number;
  /** Seconds before what a mount gone without unmounting left in ORPHANS is removed (see OrphanDir). */
  orphanGraceSec: number;
}

/**
 * The POSIX file system of one mount, in promise form, over the client library: what the FUSE
 * adapter (mount/) calls, one method per operation, every failure an FsError. Paths are the
 * mount's; open files are per path (see OpenFile) and follow renames; handles are small
 * integers. A file unlinked or renamed over while open lives on under a hidden name until its
 * last release (see hide).
 */
export class PosixFs {
  private readonly files = new Map<string, OpenFile>();
  private readonly handles = new Map<number, OpenFile>();
  private readonly attrs: AttrCache;
  private readonly prefetch: DirPrefetch | null;
  /** Bumped whenever cached attributes are forgotten: a listing asked for before may be stale. */
  private generation = 0;
  /** What the last FORGOTTEN_KEPT forgets made stale, the newest last (see keepListing). */
  private readonly forgotten: Array<string[] | 'all'> = [];
  /** Write buffer memory, reused across the mount's open files. */
  private readonly slabs: BufferPool;
  /** Open files whose last handle was released and whose leases are being handed back. */
  private readonly closing = new Set<OpenFile>();
  /** Open files unlinked here, under a hidden name until their last release (see hide). */
  private readonly orphans = new Set<OpenFile>();
  private readonly orphanDir: OrphanDir;
  /** Hidden names of orphans being removed. */
  private readonly unlinking = new Set<string>();
  /** The attributes of each open file as last seen (what fgetattr answers once another client removed it). */
  private readonly lastAttrs = new WeakMap<OpenFile, Attr>();
  /** Handles opened with O_APPEND. */
  private readonly appending = new Set<number>();
  /** Per handle, the background write failures of its file it has seen (OpenFile.failureSince). */
  private readonly seenFailures = new Map<number, number>();
  private nextHandle = 1;
  /** The cluster's chunk size, once known (0 before). */
  private chunkSize = 0;

  constructor(
    private readonly master: MasterClient,
    private readonly peers: ChunkClientPool,
    private readonly tuning: PosixFsOptions,
  ) {
    this.attrs = new AttrCache(tuning.attrCacheSec * 1000);
    this.prefetch = tuning.attrCacheSec > 0 ? new DirPrefetch(tuning.attrCacheSec * 1000, (dir) => this.cacheListing(dir)) : null;
    this.slabs = new BufferPool(tuning.writeBufferBytes);
    this.orphanDir = new OrphanDir(master, tuning.orphanGraceSec * 1000, (dir) => this.mkdir(dir, 0o700, { uid: 0, gid: 0 }));
  }

  // ------------------------------------------------------------------ attributes

  /**
   * True when `name` is known to be absent from directory `dir` (an inode number) without
   * asking: the mount holds a lease on the directory (client/leased-dirs.ts).
   */
  knownAbsent(dir: number, name: string): boolean {
    return this.master.leasedDirs?.absent(dir, name) ?? false;
  }

  /** The master's attributes, with this mount's unflushed writes laid over (size, mtime). */
  async getattr(path: string): Promise<Attr> {
    return this.overlay(path, this.attrs.get(path) ?? (await this.lookup(path)));
  }

  /** Attributes not cached: from the listing of the directory if one is being fetched, else the master. */
  private async lookup(path: string): Promise<Attr> {
    const dir = dirname(path);
    const listing = this.prefetch?.pending(dir);
    if (listing) {
      await listing;
      const listed = this.attrs.get(path);
      if (listed) return listed;
    }
    const attr = await this.master.getattr(path).catch((err: unknown) => {
      this.prefetch?.missed(dir, false);
      throw err;
    });
    this.prefetch?.missed(dir, true);
    this.attrs.set(path, attr);
    return attr;
  }

  /**
   * The first page of `dir`'s listing into the attribute cache (DirPrefetch decides when),
   * unless something changed meanwhile: its entries could predate the change.
   */
  private async cacheListing(dir: string): Promise<void> {
    const generation = this.generation;
    const { page } = await this.master.readdirPage(dir, '', MAX_LISTING_PAGE);
    this.keepListing(dir, page, generation);
  }

  /**
   * `page`, a listing of `dir` asked for at `generation`, into the attribute cache, with the
   * paths changed through this mount since marked stale in it (it may predate their change);
   * dropped when too much changed meanwhile (a rename, a hard link, many changes). Without the
   * marking, every listing asked for during a stream of changes (rm -r, rmdir after rmdir) was
   * dropped, and each next name cost a master round trip.
   */
  private keepListing(dir: string, page: ListingPage, generation: number): void {
    const changed = this.generation - generation;
    if (changed > this.forgotten.length) return;
    const stale = this.forgotten.slice(this.forgotten.length - changed);
    if (stale.includes('all')) return;
    this.attrs.setListing(dir, page);
    for (const paths of stale) for (const p of paths) this.attrs.delete(p);
  }

  /**
   * The file open here that `attr` (of `path`) is of: open under that name, or, for a file with
   * hard links, under another (a link of a file with buffered writes showed size 0, and the
   * kernel then read nothing through the open descriptor).
   */
  private openFileOf(path: string, attr: Attr): OpenFile | undefined {
    const open = this.files.get(path);
    if (open?.ino === attr.ino) return open;
    if (attr.nlink < 2) return undefined;
    for (const file of this.files.values()) if (file.ino === attr.ino) return file;
    return undefined;
  }

  /**
   * The file open here that `path` names, also when it is open under another of its hard links
   * (a truncate or utimens by this name must reach its buffered writes, or they would land after it).
   */
  private async openFileNamed(path: string): Promise<OpenFile | undefined> {
    const open = this.files.get(path);
    if (open || this.files.size === 0) return open;
    return this.openFileOf(path, this.attrs.get(path) ?? (await this.lookup(path))); // the master's link count, hidden names included
  }

  /**
   * fstat(2): the attributes of the file open as `handle`, wherever it is now (its name is
   * asked for again when it names another file or none: another client renamed it).
   */
  async fgetattr(handle: number): Promise<Attr> {
    const open = this.handle(handle);
    try {
      const attr = await byCurrentName(open, () => ofSameFile(open, this.getattr(open.path)));
      this.lastAttrs.set(open, attr);
      return attr;
    } catch (err) {
      // Removed by another client: what this mount last knew, with no link left (as fstat of
      // a file unlinked while open shows), and reads go on as they would on a local disk.
      const last = this.lastAttrs.get(open);
      if (open.removed && last) return { ...last, nlink: 0, size: open.size };
      throw err;
    }
  }

  /** The inode of the file open as `handle`. */
  inoOf(handle: number): number {
    return this.handle(handle).ino;
  }

  /** The current path of an open file (it follows renames, and hiding when unlinked). */
  pathOf(handle: number): string {
    return this.handle(handle).path;
  }

  private overlay(path: string, attr: Attr): Attr {
    const open = this.openFileOf(path, attr);
    if (!open) return attr;
    // An unlinked file lives on under its hidden name, a link POSIX says is gone (fstat: 0).
    const nlink = this.orphans.has(open) ? Math.max(attr.nlink - 1, 0) : attr.nlink;
    if (!open.unflushed) return nlink === attr.nlink ? attr : { ...attr, nlink };
    return { ...attr, nlink, size: Math.max(attr.size, open.size), mtimeMs: Math.max(attr.mtimeMs, open.mtimeMs) };
  }

  async chmod(path: string, mode: number): Promise<void> {
    await this.setattr(path, { mode: mode & PERMISSION_BITS });
  }

  /** uid or gid 0xffffffff (-1 from chown(2)) leaves it unchanged. */
  async chown(path: string, uid: number, gid: number): Promise<void> {
    const changes: AttrChanges = {};
    if (uid !== 0xffffffff && uid !== -1) changes.uid = uid;
    if (gid !== 0xffffffff && gid !== -1) changes.gid = gid;
    if (changes.uid === undefined && changes.gid === undefined) {
      await this.master.getattr(path); // still ENOENT for a missing file
      return;
    }
    await this.setattr(path, changes);
  }

  async utimens(path: string, atime: TimeChange, mtime: TimeChange): Promise<void> {
    const now = Date.now();
    const changes: AttrChanges = {};
    if (atime !== 'omit') changes.atimeMs = atime === 'now' ? now : atime;
    if (mtime !== 'omit') changes.mtimeMs = mtime === 'now' ? now : mtime;
    if (changes.atimeMs === undefined && changes.mtimeMs === undefined) {
      await this.master.getattr(path);
      return;
    }
    const open = await this.openFileNamed(path);
    if (open) this.attrs.set(path, await this.changing(this.inodeOf(path), () => open.setTimes(changes)));
    else await this.setattr(path, changes);
  }

  async truncate(path: string, size: number): Promise<void> {
    await this.learnChunkSize(path);
    this.checkFileSize(size);
    const open = await this.openFileNamed(path);
    return this.changing(this.inodeOf(path), async () => {
      if (open) return open.truncate(size);
      const writer = new FileWriter(this.master, this.peers, this.chunkSize);
      try {
        await writer.truncate(path, size);
      } finally {
        await writer.close();
      }
    });
  }

  ftruncate(handle: number, size: number): Promise<void> {
    const open = this.handle(handle);
    this.checkFileSize(size);
    return this.changing(this.inodeOf(open.path), () => open.truncate(size));
  }

  /**
   * fallocate(2) through an open file, the plain mode (the file reaches `offset + length`) or
   * with FALLOC_FL_KEEP_SIZE. Chunks are placed when written, as for any sparse file, so nothing
   * is reserved: a request for more than the cluster has free (the bytes past the file's end,
   * times its replication, against the chunkservers' free space) fails with ENOSPC and changes
   * nothing, but other clients may still fill the cluster before the bytes are written.
   */
  async fallocate(handle: number, offset: number, length: number, keepSize: boolean): Promise<void> {
    const open = this.handle(handle);
    if (offset < 0 || length <= 0) throw new FsError('EINVAL', `fallocate of ${length} bytes at ${offset}`);
    const end = offset + length; // past 2^53 inexact, but far past the largest file anyway
    this.checkFileSize(end); // (the chunk size is known: learnt when the file was opened)
    const past = end - Math.max(offset, open.size);
    if (past > 0) {
      const [{ freeBytes }, { replication }] = await Promise.all([this.statfs(), this.getattr(open.path)]);
      if (past * Math.max(replication, 1) > freeBytes) {
        throw new FsError('ENOSPC', `fallocate of ${past} bytes past the end of ${open.path} at replication ${replication}: the cluster has ${freeBytes} bytes free`);
      }
    }
    await this.changing(this.inodeOf(open.path), () => open.allocate(keepSize ? 0 : end));
  }

  // ------------------------------------------------------------------ extended attributes

  /**
   * The value of extended attribute `name` of `path`: ENODATA without asking when the file's
   * fresh attributes say it has none (ls -l asks for security.selinux of every file it lists).
   */
  async getxattr(path: string, name: string): Promise<Buffer> {
    if (this.withoutXattrs(path)) {
      checkXattrName(name); // a bad name is an error whatever the file has
      throw new FsError('ENODATA', `no attribute ${name}`);
    }
    return this.master.getxattr(path, name);
  }

  /** The names of `path`'s extended attributes (none without asking, as for getxattr). */
  async listxattrs(path: string): Promise<string[]> {
    return this.withoutXattrs(path) ? [] : this.master.listxattrs(path);
  }

  /** `flags`: XATTR_CREATE, XATTR_REPLACE or 0. */
  async setxattr(path: string, name: string, value: Buffer, flags: number): Promise<void> {
    this.attrs.set(path, await this.changing(this.inodeOf(path), () => this.master.setxattr(path, name, value, flags)));
  }

  async removexattr(path: string, name: string): Promise<void> {
    this.attrs.set(path, await this.changing(this.inodeOf(path), () => this.master.removexattr(path, name)));
  }

  /** The fresh cached attributes of `path` say it has no extended attributes. */
  private withoutXattrs(path: string): boolean {
    const attr = this.attrs.get(path);
    return attr !== null && !attr.hasXattrs;
  }

  // ------------------------------------------------------------------ namespace

  /** The entries of `path`; their attributes, which come with them, go to the cache (ls -l, rm -r). */
  async list(path: string): Promise<ListingPage> {
    const generation = this.generation;
    // Pages as large as the master sends: at 1,000 a page, a cold listing of 5,000 took five
    // round trips, and joining the pages cost as much again.
    const listing = await this.master.listing(path, MAX_LISTING_PAGE);
    this.keepListing(path, listing, generation);
    // Hidden names of files unlinked while open here (beside them, see hide), and of those being
    // removed, are not listed.
    if (path !== '/' && this.unlinking.size === 0 && this.orphans.size === 0) return listing;
    const hidden = new Set([...this.unlinking, ...[...this.orphans].map((o) => o.path)]);
    return listing.without((name) => (path === '/' && name === ORPHANS_NAME) || hidden.has(childPath(path, name)));
  }

  readlink(path: string): Promise<string> {
    return this.master.readlink(path);
  }

  async mkdir(path: string, mode: number, caller: Caller): Promise<void> {
    const { attr } = await this.inDirectory(path, [dirname(path)], () => this.master.mkdir(path, mode & PERMISSION_BITS, caller));
    this.attrs.set(path, attr);
  }

  async symlink(target: string, path: string, caller: Caller): Promise<void> {
    const { attr } = await this.inDirectory(path, [dirname(path)], () => this.master.symlink(target, path, caller));
    this.attrs.set(path, attr);
  }

  async link(existing: string, path: string): Promise<void> {
    await this.changing('all', () => this.master.link(existing, path));
  }

  async unlink(path: string): Promise<void> {
    if (this.files.has(path)) return this.hide(path);
    await this.inDirectory(path, this.inodeOf(path, [dirname(path)]), async () => ({ parent: await this.master.unlink(path) }));
    this.files.get(path)?.dropReadCache();
  }

  async rmdir(path: string): Promise<void> {
    await this.inDirectory(path, [path, dirname(path)], async () => ({ parent: await this.master.rmdir(path) }));
  }

  /**
   * Atomic replace (or, with `noReplace`, EEXIST when `to` exists: renameat2's
   * RENAME_NOREPLACE; with `exchange`, RENAME_EXCHANGE: the two swap); open files follow.
   */
  async rename(from: string, to: string, mode: RenameMode = 'replace'): Promise<void> {
    if (mode === 'exchange') {
      await this.changing('all', () => this.master.rename(from, to, 'exchange'));
      this.moveOpenFiles([[from, to], [to, from]]);
      return;
    }
    if (to !== from && this.files.has(to)) {
      if (mode === 'noReplace') throw new FsError('EEXIST', `${to} exists (RENAME_NOREPLACE)`);
      // A rename that fails must not have moved `to` away: its source is asked for first (the
      // kernel has looked it up, but another mount may have removed it since; the kernel
      // itself refuses a directory onto a file, and a rename between two links of one file).
      await this.master.getattr(from);
      await this.hide(to);
    }
    await this.changing('all', () => this.master.rename(from, to, mode));
    this.moveOpenFiles([[from, to]]);
  }

  /** Open files at or below each `from` now have their names at or below its `to` (all moves at once). */
  private moveOpenFiles(moves: Array<[from: string, to: string]>): void {
    const moved = [...this.files].flatMap(([p, open]) => {
      const move = moves.find(([from]) => p === from || p.startsWith(`${from}/`));
      return move ? [{ key: p, open, path: move[1] + p.slice(move[0].length) }] : [];
    });
    for (const { key } of moved) this.files.delete(key);
    for (const { open, path } of moved) {
      open.path = path;
      this.files.set(path, open);
    }
  }

  /**
   * Unlinks a file still open here by moving it to a hidden name in ORPHANS: its open handles
   * keep reading and writing it, its last release removes it (see release), and its directory
   * may be removed meanwhile, as on a local file system. Beside the file (as NFS does) when
   * there is no such directory to move it to (a file of that name).
   */
  private async hide(path: string): Promise<void> {
    let hidden: string;
    try {
      hidden = await this.orphanDir.hiddenName();
      await this.rename(path, hidden);
    } catch (err) {
      this.orphanDir.forget(); // looked for again next time
      if (!['ENOTDIR', 'EEXIST', 'ENOENT'].includes(toFsError(err).code) || !(await this.exists(path))) throw err;
      hidden = this.orphanDir.besideName(path);
      await this.rename(path, hidden);
    }
    const open = this.files.get(hidden);
    if (open) this.orphans.add(open);
    else await this.master.unlink(hidden); // its last handle was released meanwhile
  }

  private async exists(path: string): Promise<boolean> {
    return this.master.getattr(path).then(() => true, () => false);
  }

  statfs(): Promise<FsStats> {
    return this.master.statfs();
  }

  /**
   * mknod(2): a regular file is created as by open(O_CREAT | O_EXCL); a FIFO, socket or device
   * node is only stored (the kernel opens those itself, never through the mount).
   */
  async mknod(path: string, mode: number, rdev: number, caller: Caller): Promise<void> {
    if ((mode & S_IFMT) === S_IFREG || (mode & S_IFMT) === 0) {
      await this.inDirectory(path, [path, dirname(path)], () => this.master.create(path, mode & PERMISSION_BITS, true, { caller }));
      return;
    }
    const { attr } = await this.inDirectory(path, [dirname(path)], () => this.master.mknod(path, mode, rdev, caller));
    this.attrs.set(path, attr);
  }

  // ------------------------------------------------------------------ open files

  /** open(2) with O_CREAT: exclusive with O_EXCL, else an existing file is opened. */
  async create(path: string, mode: number, flags: number, caller: Caller): Promise<number> {
    // A create for writing is usually a new file about to be written (tar, cp, a shell's `>`,
    // open(..., 'w')): if this call makes the file, its first chunk comes with it, in the same
    // master call and log write (an existing file opened this way gets none; a chunk never
    // written stays an unwritten entry, nothing on the chunkservers, and reads as a hole).
    const exclusive = (flags & O_EXCL) !== 0;
    const allocateFirstChunk = (flags & O_ACCMODE) !== O_RDONLY;
    const { attr, created, firstChunk } = await this.inDirectory(path, [path, dirname(path)], () =>
      this.master.create(path, mode & PERMISSION_BITS, exclusive, { caller, allocateFirstChunk }));
    if (firstChunk && this.chunkSize === 0) this.chunkSize = firstChunk.chunkSize;
    await this.learnChunkSize(path);
    const handle = this.open(path, attr, flags);
    if (firstChunk) this.handle(handle).adoptAllocation(firstChunk);
    // Even an empty file: O_TRUNC of an existing file updates its mtime and ctime (POSIX), and
    // an open handle may hold writes the master's size does not show yet.
    if (!created && flags & O_TRUNC) await this.truncateOpened(handle);
    return handle;
  }

  /**
   * open(2) without O_CREAT (the kernel has already looked the path up and checked access).
   * Asks the master even for a file open here already: another mount may have replaced it.
   */
  async openExisting(path: string, flags: number): Promise<number> {
    const handle = await this.openFresh(path, flags);
    // Even an empty file, or one open elsewhere with writes still buffered (see create); and
    // whatever the access mode, as Linux does (the kernel has checked write permission).
    if (flags & O_TRUNC) await this.truncateOpened(handle);
    return handle;
  }

  /** O_TRUNC of a handle just opened; if it fails, the open fails and the handle goes (no release follows). */
  private async truncateOpened(handle: number): Promise<void> {
    try {
      await this.ftruncate(handle, 0);
    } catch (err) {
      await this.release(handle).catch(() => undefined);
      throw err;
    }
  }

  /** openExisting: the file's attributes and first chunks from the master. */
  private async openFresh(path: string, flags: number): Promise<number> {
    // Fresh attributes (close-to-open consistency) and where the first chunks are, asked for
    // together: issued in one turn they share a session batch, so a small file's read that
    // follows needs no round trip to the master.
    const [attr, window] = await Promise.all([
      this.master.getattr(path),
      this.master.chunkLocations(path, 0, LOCATION_WINDOW).catch(() => null), // a directory, say: getattr tells
    ]);
    if ((attr.mode & S_IFMT) !== S_IFREG) throw new FsError('EISDIR', `${path} is not a regular file`);
    if (window) this.chunkSize = window.chunkSize;
    else await this.learnChunkSize(path);
    // Only a file opened afresh here (not under this name or another of its links): one opened
    // meanwhile by another call may have flushed writes since the window was asked for.
    const fresh = this.openFileOf(path, attr) === undefined;
    const handle = this.open(path, attr, flags);
    if (window && fresh) this.handle(handle).seedLocations(window);
    if ((flags & O_ACCMODE) === O_RDONLY && !(flags & O_TRUNC)) this.handle(handle).prefetchSmall();
    return handle;
  }

  async read(handle: number, offset: number, length: number): Promise<Buffer> {
    return this.handle(handle).read(offset, length);
  }

  /**
   * O_APPEND writes land at the end this mount knows: the kernel's offset comes from its cached
   * size, which may predate another mount's append.
   */
  async write(handle: number, offset: number, data: Buffer): Promise<number> {
    const open = this.handle(handle);
    if (data.length === 0) return 0;
    const at = this.appending.has(handle) ? Math.max(offset, open.size) : offset;
    // Up to the largest file, as write(2) does at a file-size limit; past it, EFBIG.
    const fits = Math.min(data.length, this.largestFile - at);
    if (fits <= 0) this.checkFileSize(at + 1);
    await open.write(at, fits < data.length ? data.subarray(0, fits) : data); // flushes landing clear the cache (OpenFile.changed)
    return fits;
  }

  /**
   * close(2) of one descriptor: buffered data reach every replica, and a background write of
   * the file that failed since this handle's open or last report surfaces here.
   */
  async flush(handle: number): Promise<void> {
    const open = this.handle(handle);
    const seen = this.seenFailures.get(handle) ?? 0;
    try {
      await open.flush();
    } finally {
      // Failures so far are reported now, by the flush's own error if it has one.
      this.seenFailures.set(handle, open.failures);
    }
    const failed = open.failureSince(seen);
    if (failed) throw failed;
  }

  /** fsync(2): returns once every byte written is durable on every replica. */
  fsync(handle: number): Promise<void> {
    return this.flush(handle);
  }

  /** The last close of a handle; the open file ends with its last handle. */
  async release(handle: number): Promise<void> {
    const open = this.handle(handle);
    this.handles.delete(handle);
    this.appending.delete(handle);
    this.seenFailures.delete(handle);
    if (--open.handles > 0) return;
    if (this.files.get(open.path) === open) this.files.delete(open.path);
    this.forget(this.inodeOf(open.path));
    if (this.orphans.delete(open)) {
      // Listings leave the hidden name out from now on: close(2) does not wait for release.
      this.unlinking.add(open.path);
      try {
        await this.unlink(open.path);
      } finally {
        this.unlinking.delete(open.path);
      }
    }
    // Data were flushed by flush() (close(2)); what is left is handing leases back, which
    // nobody waits for (unreleased leases expire anyway).
    this.closing.add(open);
    void open.close().catch((err: Error) => log.warn(`closing ${open.path}: ${err.message}`)).finally(() => this.closing.delete(open));
  }

  /** Flushes and closes every open file, and removes those unlinked while open (unmount). */
  async closeAll(): Promise<void> {
    const open = [...this.files.values(), ...this.closing];
    const orphans = [...this.orphans];
    this.files.clear();
    this.handles.clear();
    this.appending.clear();
    this.seenFailures.clear();
    this.orphans.clear();
    await Promise.allSettled(open.map((f) => f.close()));
    await Promise.allSettled(orphans.map((f) => this.master.unlink(f.path)));
    await this.orphanDir.close();
  }

  /** A handle on the open file of `path`, opened with the master's `attr` if not open yet. */
  private open(path: string, attr: Attr | null, flags: number): number {
    // Another mount replaced the file open here (renamed another over it, or removed and made
    // it again): a new open is of the file the name has now; the old one's handles keep theirs.
    const named = this.files.get(path);
    if (attr && named && named.ino !== attr.ino) this.files.delete(path);
    // The file may be open here under another of its hard links: its handles share that one's
    // writes (a second OpenFile would read past them, and show the master's size without them).
    let open = attr ? this.openFileOf(path, attr) : this.files.get(path);
    if (!open) {
      const file: OpenFile = new OpenFile(this.master, this.peers, path, attr!.ino, attr!.size, this.tuning, this.slabs, this.chunkSize,
        () => this.forget(this.inodeOf(file.path)), (from) => this.moved(file, from));
      open = file;
      this.files.set(path, open);
    }
    if (attr) {
      this.attrs.set(path, attr);
      this.lastAttrs.set(open, attr);
    }
    open.handles++;
    const handle = this.nextHandle++;
    this.handles.set(handle, open);
    this.seenFailures.set(handle, open.failures);
    if (flags & O_APPEND) this.appending.add(handle);
    return handle;
  }

  /**
   * An open file found under a new name (OpenFile.relocate: another client renamed it): it is
   * known by that name from now on, unless a file open here has it already.
   */
  private moved(file: OpenFile, from: string): void {
    if (this.files.get(from) === file) this.files.delete(from);
    if (!this.files.has(file.path)) this.files.set(file.path, file);
    this.forget([from, file.path]);
  }

  /** The largest file's size (the chunk size is known once a file was opened; the master checks too). */
  private get largestFile(): number {
    return this.chunkSize === 0 ? Infinity : maxFileSize(this.chunkSize);
  }

  /** EFBIG for a size past the largest file. */
  private checkFileSize(size: number): void {
    if (size > this.largestFile) checkFileSize(size, this.chunkSize);
  }

  /**
   * The cluster's chunk size, asked once per mount through a regular file (the master answers
   * it with chunk locations).
   */
  private async learnChunkSize(path: string): Promise<void> {
    if (this.chunkSize !== 0) return;
    this.chunkSize = (await this.master.chunkLocations(path, 0, 1)).chunkSize;
  }

  private handle(handle: number): OpenFile {
    const open = this.handles.get(handle);
    if (!open) throw new FsError('EBADF', `no open file with handle ${handle}`);
    return open;
  }

  /** The master answers with the attributes after the change: kept (tar's chmod, chown and utimens are each followed by a stat). */
  private async setattr(path: string, changes: AttrChanges): Promise<void> {
    this.attrs.set(path, await this.changing(this.inodeOf(path), () => this.master.setattr(path, changes)));
  }

  /**
   * Runs a change, forgetting the cached attributes it makes stale before and after it (an
   * answer to a getattr that crossed the change must not stay cached).
   */
  private async changing<T>(stale: string[] | 'all', change: () => Promise<T>): Promise<T> {
    this.forget(stale);
    try {
      return await change();
    } finally {
      this.forget(stale);
    }
  }

  /**
   * A change to the entries of `path`'s directory (see changing), whose answer carries the
   * directory's attributes afterwards: those are cached, so that the kernel's next look at the
   * directory costs no round trip.
   */
  private async inDirectory<T extends { parent: Attr | null }>(path: string, stale: string[] | 'all', change: () => Promise<T>): Promise<T> {
    const done = await this.changing(stale, change);
    if (done.parent) this.attrs.set(dirname(path), done.parent);
    return done;
  }

  private forget(stale: string[] | 'all'): void {
    this.generation++;
    this.forgotten.push(stale);
    if (this.forgotten.length > FORGOTTEN_KEPT) this.forgotten.shift();
    if (stale === 'all') this.attrs.clear();
    else for (const p of stale) this.attrs.delete(p);
  }

  /**
   * The cached paths a change to the inode at `path` makes stale: that path (plus `more`), or
   * every path when the inode may have other names (hard links; unknown counts as maybe). The
   * link count last seen is enough: links made through this mount clear every path, and one
   * made through another mount is seen within the cache time like any change from there.
   */
  private inodeOf(path: string, more: string[] = []): string[] | 'all' {
    const attr = this.attrs.lastKnown(path);
    if (!attr || ((attr.mode & S_IFMT) !== S_IFDIR && attr.nlink > 1)) return 'all';
    return [path, ...more];
  }
}
