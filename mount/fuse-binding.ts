import * as path from 'path';
import type { ListingPage } from '../server/common/dir-listing';
import { rawName } from '../server/common/raw-names';

/**
 * The typed face of mount/native/chunkfs_fuse.c: libfuse 3's low-level API served from Node's
 * event loop. Each request reaches one handler method with its arguments and is answered
 * exactly once, later, through the reply functions (a Request is the C request as a number).
 */
export type Request = number & { readonly __request: unique symbol };
export type MountHandle = { readonly __mount: unique symbol };

/** The operations as numbered in chunkfs_fuse.c. */
export const enum Op {
  LOOKUP, FORGET, GETATTR, SETATTR, READLINK, MKNOD, MKDIR, UNLINK, RMDIR, SYMLINK, RENAME,
  LINK, OPEN, READ, WRITE, FLUSH, RELEASE, FSYNC, OPENDIR, READDIR, RELEASEDIR, STATFS, CREATE,
  UNMOUNTED, SETXATTR, GETXATTR, LISTXATTR, REMOVEXATTR, FORGET_MULTI, FALLOCATE,
}

/** The largest request either way and the read-ahead the binding asks the kernel for (chunkfs_fuse.c). */
export const MAX_REQUEST_BYTES = 1 << 20;

/** setattr's to_set bits (fuse_lowlevel.h). */
export const SET_ATTR = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
} as const;

/** Attributes as the kernel gets them. */
export interface KernelStat {
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  blksize: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  /** character and block devices: the device number */
  rdev: number;
}

export interface Statvfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  namemax: number;
}

/** fh is -1 when the kernel sent no file handle. uid/gid: the caller's. */
export interface LowLevelHandlers {
  lookup(req: Request, parent: number, name: string): void;
  forget(ino: number, nlookup: number): void;
  /** A batch of forgets: (ino, nlookup) pairs. */
  forgetMany(pairs: Float64Array): void;
  getattr(req: Request, ino: number, fh: number): void;
  setattr(req: Request, ino: number, fh: number, toSet: number, mode: number, uid: number, gid: number, size: number, atimeMs: number, mtimeMs: number): void;
  readlink(req: Request, ino: number): void;
  mknod(req: Request, parent: number, name: string, mode: number, rdev: number, uid: number, gid: number): void;
  mkdir(req: Request, parent: number, name: string, mode: number, uid: number, gid: number): void;
  unlink(req: Request, parent: number, name: string): void;
  rmdir(req: Request, parent: number, name: string): void;
  symlink(req: Request, target: string, parent: number, name: string, uid: number, gid: number): void;
  rename(req: Request, parent: number, name: string, newParent: number, newName: string, flags: number): void;
  link(req: Request, ino: number, newParent: number, newName: string): void;
  open(req: Request, ino: number, flags: number): void;
  read(req: Request, ino: number, size: number, offset: number, fh: number): void;
  write(req: Request, ino: number, data: Buffer, offset: number, fh: number): void;
  flush(req: Request, ino: number, fh: number): void;
  release(req: Request, ino: number, fh: number): void;
  fsync(req: Request, ino: number, fh: number): void;
  /** mode: FALLOC_FL_* bits (the kernel has checked them against what FUSE passes on). */
  fallocate(req: Request, ino: number, mode: number, offset: number, length: number, fh: number): void;
  opendir(req: Request, ino: number): void;
  readdir(req: Request, ino: number, size: number, offset: number, fh: number): void;
  releasedir(req: Request, ino: number, fh: number): void;
  statfs(req: Request, ino: number): void;
  create(req: Request, parent: number, name: string, mode: number, flags: number, uid: number, gid: number): void;
  /** flags: XATTR_CREATE, XATTR_REPLACE or 0. */
  setxattr(req: Request, ino: number, name: string, value: Buffer, flags: number): void;
  /** size 0: only the value's length is asked for. */
  getxattr(req: Request, ino: number, name: string, size: number): void;
  /** uid: the caller's. */
  listxattr(req: Request, ino: number, size: number, uid: number): void;
  removexattr(req: Request, ino: number, name: string): void;
  /** The mount went away (fusermount -u, or the device failed). */
  unmounted(): void;
}

interface Native {
  decodeName(bytes: Buffer): string;
  packDirents(out: Buffer, offset: number, dotIno: number, dotDotIno: number, names: Buffer, columns: Buffer, inoAt: number, modeAt: number, n: number): number;
  mount(mountpoint: string, options: string, dispatch: (op: Op, ...args: unknown[]) => void): MountHandle;
  unmount(handle: MountHandle): void;
  replyErr(req: Request, errno: number): void;
  replyEntry(req: Request, ...statThenTimeouts: number[]): void;
  replyCreate(req: Request, ...statThenTimeoutsAndFh: number[]): void;
  replyAttr(req: Request, ...statThenTimeout: number[]): void;
  replyOpen(req: Request, fh: number, keepCache: boolean, noFlush: boolean): void;
  replyWrite(req: Request, count: number): void;
  replyBuf(req: Request, data: Buffer, length: number): void;
  replyReadlink(req: Request, target: Buffer): void;
  replyXattrSize(req: Request, size: number): void;
  replyStatfs(req: Request, ...fields: number[]): void;
  markNoCapability(handle: MountHandle, ino: number, ms: number): void;
  notifyInvalInode(handle: MountHandle, ino: number, offset: number, length: number): void;
  notifyInvalEntry(handle: MountHandle, parent: number, name: Buffer): void;
}

// Built by scripts/build-fuse-addon.sh; this file runs from dist/mount/.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const native: Native = require(path.join(__dirname, '../../mount/native/build/Release/chunkfs_fuse.node'));

/** The string the binding makes of a name's bytes from the kernel (raw_names.c; the tests compare it with raw-names.ts). */
export function decodeKernelName(bytes: Buffer): string {
  return native.decodeName(bytes);
}

/**
 * '.' (`dotIno`), '..' (`dotDotIno`) and the entries of `page` from position `offset` on, as
 * fuse_dirent records in `out` (mount/native/dirents.c); returns the bytes used.
 */
export function packKernelDirents(out: Buffer, offset: number, dotIno: number, dotDotIno: number, page: ListingPage): number {
  const { names, columns, inoAt, modeAt } = page.layout();
  return native.packDirents(out, offset, dotIno, dotDotIno, names, columns, inoAt, modeAt, page.length);
}

function statArgs(s: KernelStat): number[] {
  return [s.ino, s.mode, s.nlink, s.uid, s.gid, s.size, s.blksize, s.atimeMs, s.mtimeMs, s.ctimeMs, s.rdev];
}

/**
 * One mounted FUSE session. After unmount() every reply is dropped: the C requests are gone
 * with the session.
 */
export class FuseSession {
  private handle: MountHandle | null;

  constructor(mountpoint: string, options: string[], handlers: LowLevelHandlers) {
    this.handle = native.mount(mountpoint, options.join(','), dispatcherOf(handlers));
  }

  get live(): boolean {
    return this.handle !== null;
  }

  unmount(): void {
    if (this.handle) native.unmount(this.handle);
    this.handle = null;
  }

  /** errno 0: success without data. */
  replyErr(req: Request, errno: number): void {
    if (this.handle) native.replyErr(req, errno);
  }

  replyEntry(req: Request, stat: KernelStat, attrTimeoutSec: number, entryTimeoutSec: number): void {
    if (this.handle) native.replyEntry(req, ...statArgs(stat), attrTimeoutSec, entryTimeoutSec);
  }

  replyCreate(req: Request, stat: KernelStat, attrTimeoutSec: number, entryTimeoutSec: number, fh: number): void {
    if (this.handle) native.replyCreate(req, ...statArgs(stat), attrTimeoutSec, entryTimeoutSec, fh);
  }

  replyAttr(req: Request, stat: KernelStat, attrTimeoutSec: number): void {
    if (this.handle) native.replyAttr(req, ...statArgs(stat), attrTimeoutSec);
  }

  /**
   * keepCache false: the kernel drops the file's cached pages (another mount may have written).
   * noFlush: close(2) of this handle sends no FLUSH (FOPEN_NOFLUSH), one round trip less for a
   * handle that cannot have written anything.
   */
  replyOpen(req: Request, fh: number, { keepCache, noFlush }: { keepCache: boolean; noFlush: boolean }): void {
    if (this.handle) native.replyOpen(req, fh, keepCache, noFlush);
  }

  replyWrite(req: Request, count: number): void {
    if (this.handle) native.replyWrite(req, count);
  }

  replyBuf(req: Request, data: Buffer, length = data.length): void {
    if (this.handle) native.replyBuf(req, data, length);
  }

  replyReadlink(req: Request, target: string): void {
    if (this.handle) native.replyReadlink(req, rawName(target));
  }

  /** The length of an attribute's value or list of names, to a request that asked only for that. */
  replyXattrSize(req: Request, size: number): void {
    if (this.handle) native.replyXattrSize(req, size);
  }

  replyStatfs(req: Request, s: Statvfs): void {
    if (this.handle) native.replyStatfs(req, s.bsize, s.frsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.favail, s.namemax);
  }

  /**
   * Inode `ino` has no security.capability for the next `ms` (0: not known). The kernel asks for
   * it before every write(2); while this holds, the binding answers that there is none.
   */
  markNoCapability(ino: number, ms: number): void {
    if (this.handle) native.markNoCapability(this.handle, ino, ms);
  }

  /** The kernel's cached attributes of `ino` are stale (its pages stay). */
  invalidateAttrs(ino: number): void {
    if (this.handle) native.notifyInvalInode(this.handle, ino, -1, 0);
  }

  /** The kernel's cached name `name` in directory `parent` is stale. */
  invalidateEntry(parent: number, name: string): void {
    if (this.handle) native.notifyInvalEntry(this.handle, parent, rawName(name));
  }
}

/** The C side's (op, ...args) calls, each to its typed handler method. */
function dispatcherOf(h: LowLevelHandlers): (op: Op, ...a: unknown[]) => void {
  const n = (v: unknown): number => v as number;
  const s = (v: unknown): string => v as string;
  const r = (v: unknown): Request => v as Request;
  return (op, ...a) => {
    switch (op) {
      case Op.LOOKUP: return h.lookup(r(a[0]), n(a[1]), s(a[2]));
      case Op.FORGET: return h.forget(n(a[0]), n(a[1]));
      case Op.FORGET_MULTI: return h.forgetMany(a[0] as Float64Array);
      case Op.GETATTR: return h.getattr(r(a[0]), n(a[1]), n(a[2]));
      case Op.SETATTR: return h.setattr(r(a[0]), n(a[1]), n(a[2]), n(a[3]), n(a[4]), n(a[5]), n(a[6]), n(a[7]), n(a[8]), n(a[9]));
      case Op.READLINK: return h.readlink(r(a[0]), n(a[1]));
      case Op.MKNOD: return h.mknod(r(a[0]), n(a[1]), s(a[2]), n(a[3]), n(a[4]), n(a[5]), n(a[6]));
      case Op.MKDIR: return h.mkdir(r(a[0]), n(a[1]), s(a[2]), n(a[3]), n(a[4]), n(a[5]));
      case Op.UNLINK: return h.unlink(r(a[0]), n(a[1]), s(a[2]));
      case Op.RMDIR: return h.rmdir(r(a[0]), n(a[1]), s(a[2]));
      case Op.SYMLINK: return h.symlink(r(a[0]), s(a[1]), n(a[2]), s(a[3]), n(a[4]), n(a[5]));
      case Op.RENAME: return h.rename(r(a[0]), n(a[1]), s(a[2]), n(a[3]), s(a[4]), n(a[5]));
      case Op.LINK: return h.link(r(a[0]), n(a[1]), n(a[2]), s(a[3]));
      case Op.OPEN: return h.open(r(a[0]), n(a[1]), n(a[2]));
      case Op.READ: return h.read(r(a[0]), n(a[1]), n(a[2]), n(a[3]), n(a[4]));
      case Op.WRITE: return h.write(r(a[0]), n(a[1]), a[2] as Buffer, n(a[3]), n(a[4]));
      case Op.FLUSH: return h.flush(r(a[0]), n(a[1]), n(a[2]));
      case Op.RELEASE: return h.release(r(a[0]), n(a[1]), n(a[2]));
      case Op.FSYNC: return h.fsync(r(a[0]), n(a[1]), n(a[2]));
      case Op.FALLOCATE: return h.fallocate(r(a[0]), n(a[1]), n(a[2]), n(a[3]), n(a[4]), n(a[5]));
      case Op.OPENDIR: return h.opendir(r(a[0]), n(a[1]));
      case Op.READDIR: return h.readdir(r(a[0]), n(a[1]), n(a[2]), n(a[3]), n(a[4]));
      case Op.RELEASEDIR: return h.releasedir(r(a[0]), n(a[1]), n(a[2]));
      case Op.STATFS: return h.statfs(r(a[0]), n(a[1]));
      case Op.CREATE: return h.create(r(a[0]), n(a[1]), s(a[2]), n(a[3]), n(a[4]), n(a[5]), n(a[6]));
      case Op.UNMOUNTED: return h.unmounted();
      case Op.SETXATTR: return h.setxattr(r(a[0]), n(a[1]), s(a[2]), a[3] as Buffer, n(a[4]));
      case Op.GETXATTR: return h.getxattr(r(a[0]), n(a[1]), s(a[2]), n(a[3]));
      case Op.LISTXATTR: return h.listxattr(r(a[0]), n(a[1]), n(a[2]), n(a[3]));
      case Op.REMOVEXATTR: return h.removexattr(r(a[0]), n(a[1]), s(a[2]));
    }
  };
}
