import { FsError, toFsError } from '../server/common/fs-error';
import { logger } from '../server/common/log';
import { rawLength, rawName } from '../server/common/raw-names';
import { S_IFMT, S_IFREG, type Attr } from '../server/master/inode';
import type { FsStats, RenameMode } from '../client/master-client';
import type { PosixFs, TimeChange } from '../client/fs/posix-fs';
import { MAX_REQUEST_BYTES, SET_ATTR, type FuseSession, type KernelStat, type LowLevelHandlers, type Request, type Statvfs } from './fuse-binding';
import { InodeNames } from './inode-names';
import { packDirents, type Listing } from './dirents';

const log = logger('mount');

/** Block size reported by statfs. */
const BLOCK = 4096;
const NAME_MAX = 255;
/** renameat2 flag: fail with EEXIST rather than replace the target. */
const RENAME_NOREPLACE = 1;
/** renameat2 flag: swap the two names (both must exist). */
const RENAME_EXCHANGE = 2;
const O_ACCMODE = 0o3;
const O_RDONLY = 0o0;
/** fallocate(2) mode bit: the file's size stays as it is. */
const FALLOC_FL_KEEP_SIZE = 0x01;
/** The attribute the kernel asks for before each write(2), to drop it (file capabilities). */
const SECURITY_CAPABILITY = 'security.capability';
const NUL = Buffer.of(0);

const TIMED_OUT = new FsError('ETIMEDOUT', '').errno;
const NO_ENTRY = new FsError('ENOENT', '').errno;

export interface CacheTimes {
  /** seconds the kernel trusts a name lookup */
  entryTimeoutSec: number;
  /** seconds the kernel trusts attributes (an open that sees a change invalidates them) */
  attrTimeoutSec: number;
  /** an operation still unanswered after this long fails with ETIMEDOUT (ms) */
  opTimeoutMs: number;
}

/**
 * The FUSE low-level operations of a mount: each finds the path of the inodes it names
 * (InodeNames), calls PosixFs, and answers; every failure becomes an errno in one place
 * (answer below).
 */
export class FuseOps implements LowLevelHandlers {
  private readonly names = new InodeNames();
  /** Open file handles per inode: what a getattr of an unlinked open file is answered from. */
  private readonly openHandles = new Map<number, Set<number>>();
  /**
   * Directories and special files (a FIFO, a device node) removed through this mount that the
   * kernel still holds (a process's working directory, an open descriptor, which the kernel
   * serves without us): stat shows their last attributes with no link, as on a local disk, until
   * the kernel forgets them. (An open regular file lives on under a hidden name instead.)
   */
  private readonly removedInodes = new Set<number>();
  /** The attributes the kernel was last told per inode: an open invalidates them when the size or mtime changed. */
  private readonly told = new Map<number, Attr>();
  /**
   * Directory listings by handle: asked for at opendir, so that the first readdir finds it on
   * its way (readdir after opendir is the usual order; what changes between them may or may not
   * be listed, as POSIX allows), and again at a later offset 0 (rewinddir).
   */
  private readonly listings = new Map<number, { entries: Promise<Listing>; used: boolean }>();
  private nextDirHandle = 1;
  private session: FuseSession | null = null;
  /** Changes of extended attributes through this mount so far (see getxattr). */
  private xattrChanges = 0;

  constructor(
    private readonly fs: PosixFs,
    private readonly times: CacheTimes,
    private readonly onUnmounted: () => void,
  ) {}

  attach(session: FuseSession): void {
    this.session = session;
  }

  // ------------------------------------------------------------------ names

  lookup(req: Request, parent: number, name: string): void {
    // The kernel looks up every name before creating it: in a directory this mount holds a lease
    // on, an absent name is answered here.
    if (this.fs.knownAbsent(parent, name) && rawLength(name) <= NAME_MAX) this.session?.replyErr(req, NO_ENTRY);
    else this.entry(req, 'lookup', parent, name, () => Promise.resolve());
  }

  forget(ino: number, nlookup: number): void {
    this.names.forget(ino, nlookup);
    if (this.names.knows(ino)) return;
    this.removedInodes.delete(ino);
    if (!this.openHandles.has(ino)) this.told.delete(ino);
  }

  forgetMany(pairs: Float64Array): void {
    for (let i = 0; i < pairs.length; i += 2) this.forget(pairs[i], pairs[i + 1]);
    if (log.debugEnabled) log.debug(`forget ${pairs.length / 2} inodes: ${this.names.size} known`);
  }

  mknod(req: Request, parent: number, name: string, mode: number, rdev: number, uid: number, gid: number): void {
    this.entry(req, 'mknod', parent, name, (path) => this.fs.mknod(path, mode, rdev, { uid, gid }));
  }

  mkdir(req: Request, parent: number, name: string, mode: number, uid: number, gid: number): void {
    this.entry(req, 'mkdir', parent, name, (path) => this.fs.mkdir(path, mode, { uid, gid }));
  }

  symlink(req: Request, target: string, parent: number, name: string, uid: number, gid: number): void {
    this.entry(req, 'symlink', parent, name, (path) => this.fs.symlink(target, path, { uid, gid }));
  }

  link(req: Request, ino: number, newParent: number, newName: string): void {
    this.entry(req, 'link', newParent, newName, (path) => this.fs.link(this.names.path(ino), path));
  }

  unlink(req: Request, parent: number, name: string): void {
    this.done(req, 'unlink', parent, name, async (path) => {
      const removed = this.names.inodeAt(parent, name);
      await this.fs.unlink(path);
      this.names.removed(parent, name);
      this.keepRemoved(removed);
    });
  }

  rmdir(req: Request, parent: number, name: string): void {
    this.done(req, 'rmdir', parent, name, async (path) => {
      const removed = this.names.inodeAt(parent, name);
      await this.fs.rmdir(path);
      this.names.removed(parent, name);
      this.keepRemoved(removed);
    });
  }

  rename(req: Request, parent: number, name: string, newParent: number, newName: string, flags: number): void {
    this.done(req, 'rename', parent, name, async (from) => {
      const mode = renameMode(flags);
      const replaced = mode === 'replace' ? this.names.inodeAt(newParent, newName) : undefined;
      await this.fs.rename(from, this.names.child(newParent, newName), mode);
      if (mode === 'exchange') this.names.exchanged(parent, name, newParent, newName);
      else this.names.renamed(parent, name, newParent, newName);
      if (replaced !== this.names.inodeAt(newParent, newName)) this.keepRemoved(replaced);
    });
  }

  readlink(req: Request, ino: number): void {
    this.answer(req, 'readlink', ino, async () => {
      const target = await this.fs.readlink(this.names.path(ino));
      return (s) => s.replyReadlink(req, target);
    });
  }

  // ------------------------------------------------------------------ attributes

  getattr(req: Request, ino: number, fh: number): void {
    this.answer(req, 'getattr', ino, async () => this.attrReply(req, await (fh >= 0 ? this.fs.fgetattr(fh) : this.attrOf(ino))));
  }

  setattr(req: Request, ino: number, fh: number, toSet: number, mode: number, uid: number, gid: number, size: number, atimeMs: number, mtimeMs: number): void {
    this.answer(req, 'setattr', ino, async () => {
      const path = this.pathOf(ino, fh);
      const handle = fh >= 0 ? fh : null;
      if (toSet & SET_ATTR.SIZE) await (handle !== null ? this.fs.ftruncate(handle, size) : this.fs.truncate(path, size));
      if (toSet & SET_ATTR.MODE) await this.fs.chmod(path, mode);
      if (toSet & (SET_ATTR.UID | SET_ATTR.GID)) {
        await this.fs.chown(path, toSet & SET_ATTR.UID ? uid : -1, toSet & SET_ATTR.GID ? gid : -1);
      }
      const atime = timeChange(toSet, SET_ATTR.ATIME, SET_ATTR.ATIME_NOW, atimeMs);
      const mtime = timeChange(toSet, SET_ATTR.MTIME, SET_ATTR.MTIME_NOW, mtimeMs);
      if (atime !== 'omit' || mtime !== 'omit') await this.fs.utimens(path, atime, mtime);
      return this.attrReply(req, await this.fs.getattr(this.pathOf(ino, fh)));
    });
  }

  statfs(req: Request, ino: number): void {
    this.answer(req, 'statfs', ino, async () => {
      const stats = statfsOf(await this.fs.statfs());
      return (s) => s.replyStatfs(req, stats);
    });
  }

  // ------------------------------------------------------------------ extended attributes

  setxattr(req: Request, ino: number, name: string, value: Buffer, flags: number): void {
    this.changingXattrs(ino);
    this.answer(req, 'setxattr', ino, async () => ok(req, await this.fs.setxattr(this.pathOf(ino, -1), name, value, flags)), name);
  }

  /**
   * The kernel asks for security.capability before every write(2): an answer that there is
   * none is also given to the binding, which gives it again itself, without waking JavaScript,
   * for as long as the kernel trusts attributes (each open renews it, see open).
   */
  getxattr(req: Request, ino: number, name: string, size: number): void {
    const changes = this.xattrChanges;
    this.answer(req, 'getxattr', ino, async () => {
      try {
        return xattrReply(req, await this.fs.getxattr(this.pathOf(ino, -1), name), size);
      } catch (err) {
        if (name === SECURITY_CAPABILITY && toFsError(err).code === 'ENODATA' && changes === this.xattrChanges) this.noCapability(ino);
        throw err;
      }
    }, name);
  }

  /** trusted.* names are listed to privileged callers only, as Linux does (the kernel leaves it to the file system). */
  listxattr(req: Request, ino: number, size: number, uid: number): void {
    this.answer(req, 'listxattr', ino, async () => {
      const names = (await this.fs.listxattrs(this.pathOf(ino, -1))).filter((n) => uid === 0 || !n.startsWith('trusted.'));
      return xattrReply(req, Buffer.concat(names.flatMap((n) => [rawName(n), NUL])), size);
    });
  }

  removexattr(req: Request, ino: number, name: string): void {
    this.changingXattrs(ino);
    this.answer(req, 'removexattr', ino, async () => ok(req, await this.fs.removexattr(this.pathOf(ino, -1), name)), name);
  }

  /** Before a change of `ino`'s attributes: what the binding knows of it goes, and answers already under way do not bring it back. */
  private changingXattrs(ino: number): void {
    this.xattrChanges++;
    this.session?.markNoCapability(ino, 0);
  }

  private noCapability(ino: number): void {
    this.session?.markNoCapability(ino, this.times.attrTimeoutSec * 1000);
  }

  // ------------------------------------------------------------------ files

  create(req: Request, parent: number, name: string, mode: number, flags: number, uid: number, gid: number): void {
    const changes = this.xattrChanges;
    this.answer(req, 'create', parent, async () => {
      const path = this.names.child(parent, name);
      const fh = await this.fs.create(path, mode, flags, { uid, gid });
      const attr = await this.fs.getattr(path);
      this.opened(attr.ino, fh);
      this.names.learned(attr.ino, parent, name);
      if (!attr.hasXattrs && changes === this.xattrChanges) this.noCapability(attr.ino); // a file just made, or opened afresh
      return (s) => s.replyCreate(req, this.tell(attr), this.times.attrTimeoutSec, this.times.entryTimeoutSec, fh);
    }, name);
  }

  open(req: Request, ino: number, flags: number): void {
    const changes = this.xattrChanges;
    this.answer(req, 'open', ino, async () => {
      const path = this.names.path(ino);
      const fh = await this.fs.openExisting(path, flags);
      this.opened(ino, fh);
      // Close-to-open: attributes another mount changed are dropped from the kernel's cache,
      // and the file's cached pages with the open (keepCache false).
      const attr = await this.fs.getattr(path);
      if (!attr.hasXattrs && changes === this.xattrChanges) this.noCapability(ino); // what the writes through this handle go by
      const known = this.told.get(ino);
      if (known && (known.size !== attr.size || known.mtimeMs !== attr.mtimeMs)) {
        this.told.delete(ino);
        this.session?.invalidateAttrs(ino);
      }
      // A read-only handle has nothing to flush at close (its writes are impossible, and other
      // handles' writes are theirs to flush): the kernel skips that round trip.
      return (s) => s.replyOpen(req, fh, { keepCache: false, noFlush: (flags & O_ACCMODE) === O_RDONLY });
    });
  }

  read(req: Request, ino: number, size: number, offset: number, fh: number): void {
    this.answer(req, `read ${size}@${offset}`, ino, async () => {
      const data = await this.fs.read(fh, offset, size);
      return (s) => s.replyBuf(req, data, Math.min(size, data.length));
    });
  }

  write(req: Request, ino: number, data: Buffer, offset: number, fh: number): void {
    this.answer(req, `write ${data.length}@${offset}`, ino, async () => {
      const written = await this.fs.write(fh, offset, data);
      return (s) => s.replyWrite(req, written);
    });
  }

  flush(req: Request, ino: number, fh: number): void {
    this.answer(req, 'flush', ino, async () => ok(req, await this.fs.flush(fh)));
  }

  fsync(req: Request, ino: number, fh: number): void {
    this.answer(req, 'fsync', ino, async () => ok(req, await this.fs.fsync(fh)));
  }

  /**
   * The plain mode and FALLOC_FL_KEEP_SIZE (see PosixFs.fallocate). Punching holes and zeroing
   * ranges are not offered: EOPNOTSUPP, which fsx, xfs_io and cp take for "not supported".
   */
  fallocate(req: Request, ino: number, mode: number, offset: number, length: number, fh: number): void {
    this.answer(req, 'fallocate', ino, async () => {
      if ((mode & ~FALLOC_FL_KEEP_SIZE) !== 0) throw new FsError('EOPNOTSUPP', `fallocate mode 0x${mode.toString(16)}: only 0 and FALLOC_FL_KEEP_SIZE are supported`);
      return ok(req, await this.fs.fallocate(fh, offset, length, (mode & FALLOC_FL_KEEP_SIZE) !== 0));
    });
  }

  release(req: Request, ino: number, fh: number): void {
    const handles = this.openHandles.get(ino);
    handles?.delete(fh);
    if (handles?.size === 0) {
      this.openHandles.delete(ino);
      this.session?.markNoCapability(ino, 0); // only files open for writing need it
    }
    this.answer(req, 'release', ino, async () => ok(req, await this.fs.release(fh)));
  }

  // ------------------------------------------------------------------ directories

  opendir(req: Request, ino: number): void {
    const fh = this.nextDirHandle++;
    this.listings.set(fh, { entries: this.listing(ino), used: false });
    this.session?.replyOpen(req, fh, { keepCache: true, noFlush: false });
  }

  /** Offsets are positions in the listing read at offset 0 ('.' and '..' first). */
  readdir(req: Request, ino: number, size: number, offset: number, fh: number): void {
    this.answer(req, 'readdir', ino, async () => {
      let held = this.listings.get(fh);
      if (!held || (offset === 0 && held.used)) {
        held = { entries: this.listing(ino), used: false };
        this.listings.set(fh, held);
      }
      held.used = true;
      const entries = await held.entries;
      // Packed as it is sent: the packed bytes last until the next readdir packs its own.
      return (s) => s.replyBuf(req, packDirents(entries, offset, size));
    });
  }

  /** The listing of directory `ino` as readdir packs it (its failure is the readdir's to report). */
  private listing(ino: number): Promise<Listing> {
    const entries = (async (): Promise<Listing> => ({ ino, parent: this.names.parentOf(ino), page: await this.fs.list(this.names.path(ino)) }))();
    entries.catch(() => undefined);
    return entries;
  }

  releasedir(req: Request, _ino: number, fh: number): void {
    this.listings.delete(fh);
    this.session?.replyErr(req, 0);
  }

  unmounted(): void {
    setImmediate(this.onUnmounted); // not from inside the C callback that reported it
  }

  // ------------------------------------------------------------------ helpers

  /**
   * The path of `ino` now: its open file's when the kernel names a handle (it follows renames and
   * hiding), else its name, else (unlinked while open) any open handle's.
   */
  private pathOf(ino: number, fh: number): string {
    if (fh >= 0) return this.fs.pathOf(fh);
    const handle = this.names.named(ino) ? undefined : this.anyHandle(ino);
    return handle === undefined ? this.names.path(ino) : this.fs.pathOf(handle);
  }

  /**
   * The attributes of inode `ino` (no handle given: stat, and fstat too), by the name the
   * kernel knows it by. When that name is another file's now, and a file open here is the
   * inode itself, they are that file's, found again wherever another mount renamed it. (A file
   * opened through this inode by that name since, as an open that has not seen another mount's
   * replacement yet does, keeps the name's attributes: it is that file the caller has open.)
   */
  private async attrOf(ino: number): Promise<Attr> {
    // (pathOf throws at once for an inode with no name left: caught the same way.)
    const attr = await Promise.resolve().then(() => this.fs.getattr(this.pathOf(ino, -1))).catch(toFsError);
    if (!(attr instanceof FsError) && attr.ino === ino) return attr;
    const handles = [...(this.openHandles.get(ino) ?? [])];
    if (!(attr instanceof FsError) && handles.some((h) => this.fs.inoOf(h) === attr.ino)) return attr;
    const own = handles.find((h) => this.fs.inoOf(h) === ino);
    if (own !== undefined) return this.fs.fgetattr(own);
    const removed = this.removedInodes.has(ino) ? this.told.get(ino) : undefined;
    if (removed && attr instanceof FsError && attr.code === 'ENOENT') return { ...removed, nlink: 0 };
    if (attr instanceof FsError) throw attr;
    return attr;
  }

  /** A name just removed (unlink, rmdir, or renamed over): its inode is kept if the kernel still holds it with no name (see removedInodes). */
  private keepRemoved(ino: number | undefined): void {
    const attr = ino === undefined ? undefined : this.told.get(ino);
    if (attr && (attr.mode & S_IFMT) !== S_IFREG && this.names.knows(attr.ino) && !this.names.named(attr.ino)) this.removedInodes.add(attr.ino);
  }

  private anyHandle(ino: number): number | undefined {
    const handles = this.openHandles.get(ino);
    return handles ? handles.values().next().value : undefined;
  }

  private opened(ino: number, fh: number): void {
    let handles = this.openHandles.get(ino);
    if (!handles) {
      handles = new Set();
      this.openHandles.set(ino, handles);
    }
    handles.add(fh);
  }

  /** Runs `change` on the path of `name` in `parent`, then answers with the entry found there. */
  private entry(req: Request, op: string, parent: number, name: string, change: (path: string) => Promise<unknown>): void {
    this.answer(req, op, parent, async () => {
      if (rawLength(name) > NAME_MAX) throw new FsError('ENAMETOOLONG', `a name of ${rawLength(name)} bytes (at most ${NAME_MAX})`);
      const path = this.names.child(parent, name);
      await change(path);
      const attr = await this.fs.getattr(path);
      this.names.learned(attr.ino, parent, name);
      return (s) => s.replyEntry(req, this.tell(attr), this.times.attrTimeoutSec, this.times.entryTimeoutSec);
    }, name);
  }

  /** Runs `change` on the path of `name` in `parent`, then answers success. */
  private done(req: Request, op: string, parent: number, name: string, change: (path: string) => Promise<void>): void {
    this.answer(req, op, parent, async () => {
      await change(this.names.child(parent, name));
      return ok(req);
    }, name);
  }

  private attrReply(req: Request, attr: Attr): Reply {
    return (s) => s.replyAttr(req, this.tell(attr), this.times.attrTimeoutSec);
  }

  /** The kernel's form of `attr`, remembered as what the kernel knows. */
  private tell(attr: Attr): KernelStat {
    this.told.set(attr.ino, attr);
    return { ...attr, blksize: MAX_REQUEST_BYTES }; // the I/O size cp, cat and friends use: one request of the largest
  }

  /**
   * Runs one operation; a failure answers its errno (logged when it is not a plain file-system
   * answer). With CHUNKFS_LOG=debug every operation is logged with its duration.
   */
  private answer(req: Request, op: string, ino: number, work: () => Promise<Reply>, name = ''): void {
    const t0 = log.debugEnabled ? performance.now() : 0;
    const what = (): string => `${op} ${ino}${name ? `/${name}` : ''}`;
    // An operation never hangs its caller: past the time limit it fails, and its late answer is dropped.
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      log.warn(`${what()}: no answer after ${this.times.opTimeoutMs} ms`);
      this.session?.replyErr(req, TIMED_OUT);
    }, this.times.opTimeoutMs);
    void (async () => {
      try {
        const reply = await work();
        if (!late && this.session) reply(this.session);
        if (log.debugEnabled) log.debug(`${what()} ${(performance.now() - t0).toFixed(2)} ms`);
      } catch (err) {
        const e = toFsError(err);
        if (e.code === 'EIO' || e.code === 'ETIMEDOUT' || e.code === 'ESTALE') log.warn(`${what()}: ${e.message}`);
        else if (log.debugEnabled) log.debug(`${what()} failed (${e.code}) ${(performance.now() - t0).toFixed(2)} ms`);
        if (!late) this.session?.replyErr(req, e.errno);
      } finally {
        clearTimeout(timer);
      }
    })();
  }
}

/** A utimens time from setattr's bits: set to a time, to now, or left alone. */
function timeChange(toSet: number, setBit: number, nowBit: number, ms: number): TimeChange {
  if (toSet & nowBit) return 'now';
  if (toSet & setBit) return ms;
  return 'omit';
}

/** Sends an operation's answer (not sent when the operation timed out meanwhile). */
type Reply = (session: FuseSession) => void;

/** The answer of an operation that succeeds without data. */
function ok(req: Request, _done?: unknown): Reply {
  return (s) => s.replyErr(req, 0);
}

/** A value or list of names to a caller with room for `size` bytes (0: it asks for the length). */
function xattrReply(req: Request, data: Buffer, size: number): Reply {
  if (size === 0) return (s) => s.replyXattrSize(req, data.length);
  if (data.length > size) throw new FsError('ERANGE', `${data.length} bytes do not fit in ${size}`);
  return (s) => s.replyBuf(req, data);
}

function statfsOf(s: FsStats): Statvfs {
  // Block counts stay in 32 bits for old callers: a larger fragment size keeps them in range.
  let frsize = BLOCK;
  while (s.capacityBytes / frsize > 0xffffffff) frsize *= 2;
  const blocks = Math.floor(s.capacityBytes / frsize);
  const free = Math.floor(s.freeBytes / frsize);
  const freeInodes = 0xffffffff - Math.min(s.files, 0xffffffff);
  return { bsize: frsize, frsize, blocks, bfree: free, bavail: free, files: 0xffffffff, ffree: freeInodes, favail: freeInodes, namemax: NAME_MAX };
}

/** renameat2's flags as a rename mode; RENAME_WHITEOUT (overlayfs's) and unknown bits are EINVAL. */
function renameMode(flags: number): RenameMode {
  if (flags === 0) return 'replace';
  if (flags === RENAME_NOREPLACE) return 'noReplace';
  if (flags === RENAME_EXCHANGE) return 'exchange';
  throw new FsError('EINVAL', `rename flags ${flags} are not supported (RENAME_WHITEOUT, or more than one)`);
}
