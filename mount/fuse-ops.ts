import type Fuse from 'fuse-native';
import { toFsError } from '../server/common/fs-error';
import { logger } from '../server/common/log';
import type { Attr } from '../server/master/inode';
import type { FsStats } from '../client/master-client';
import type { PosixFs } from '../client/fs/posix-fs';

const log = logger('mount');

/** Block size reported by stat and statfs. */
const BLOCK = 4096;
const NAME_MAX = 255;

/**
 * The FUSE operations of a mount: each a line or two calling PosixFs, with every failure
 * turned into a negative errno in one place (answer/fail below).
 */
export function fuseOperations(fs: PosixFs): Fuse.FuseOperations {
  return {
    getattr: (path, cb) => answer(fs.getattr(path).then(statOf), cb),
    fgetattr: (path, fd, cb) => answer(fs.fgetattr(path, fd).then(statOf), cb),
    readdir: (path, cb) => answer(fs.readdir(path), cb),
    readlink: (path, cb) => answer(fs.readlink(path), cb),
    statfs: (_path, cb) => answer(fs.statfs().then(statfsOf), cb),
    mkdir: (path, mode, caller, cb) => answer(fs.mkdir(path, mode, caller), cb),
    rmdir: (path, cb) => answer(fs.rmdir(path), cb),
    mknod: (path, mode, _dev, caller, cb) => answer(fs.mknod(path, mode, caller), cb),
    symlink: (target, path, caller, cb) => answer(fs.symlink(target, path, caller), cb),
    link: (existing, path, cb) => answer(fs.link(existing, path), cb),
    unlink: (path, cb) => answer(fs.unlink(path), cb),
    rename: (from, to, cb) => answer(fs.rename(from, to), cb),
    chmod: (path, mode, cb) => answer(fs.chmod(path, mode), cb),
    chown: (path, uid, gid, cb) => answer(fs.chown(path, uid, gid), cb),
    utimens: (path, atime, mtime, cb) => answer(fs.utimens(path, atime, mtime), cb),
    truncate: (path, size, cb) => answer(fs.truncate(path, size), cb),
    ftruncate: (_path, fd, size, cb) => answer(fs.ftruncate(fd, size), cb),
    create: (path, mode, flags, caller, cb) => answer(fs.create(path, mode, flags, caller), cb),
    open: (path, flags, cb) => answer(fs.openExisting(path, flags), cb),
    read: (_path, fd, buf, len, pos, cb) =>
      fs.read(fd, pos, len).then((data) => cb(data.copy(buf, 0, 0, Math.min(len, data.length))), (err) => cb(fail(err, 'read', _path))),
    write: (_path, fd, buf, len, pos, cb) =>
      fs.write(fd, pos, buf.subarray(0, len)).then(cb, (err) => cb(fail(err, 'write', _path))),
    flush: (_path, fd, cb) => answer(fs.flush(fd), cb),
    fsync: (_path, _datasync, fd, cb) => answer(fs.fsync(fd), cb),
    release: (_path, fd, cb) => answer(fs.release(fd), cb),
    // Directories need no handle state: listings are read whole by readdir.
    opendir: (_path, _flags, cb) => cb(0, 0),
    releasedir: (_path, _fd, cb) => cb(0),
    fsyncdir: (_path, _datasync, _fd, cb) => cb(0), // namespace changes are durable when answered
  };
}

/** Settles a FUSE callback: 0 and the value, or the negative errno. */
function answer<T>(work: Promise<T>, cb: (errno: number, value?: T) => void): void {
  work.then((value) => cb(0, value), (err) => cb(fail(err, 'operation', '')));
}

/** The negative errno of any failure; errors that are not plain file-system answers are logged. */
function fail(err: unknown, op: string, path: string): number {
  const e = toFsError(err);
  if (e.code === 'EIO' || e.code === 'ETIMEDOUT') log.warn(`${op} ${path}: ${e.message}`);
  return -e.errno;
}

function statOf(a: Attr): Fuse.FuseStat {
  return {
    mode: a.mode,
    uid: a.uid,
    gid: a.gid,
    size: a.size,
    nlink: a.nlink,
    ino: a.ino,
    blksize: BLOCK,
    blocks: Math.ceil(a.size / 512),
    atime: a.atimeMs,
    mtime: a.mtimeMs,
    ctime: a.ctimeMs,
  };
}

function statfsOf(s: FsStats): Fuse.FuseStatfs {
  // statfs fields are 32-bit here: a larger fragment size keeps block counts in range.
  let frsize = BLOCK;
  while (s.capacityBytes / frsize > 0xffffffff) frsize *= 2;
  const blocks = Math.floor(s.capacityBytes / frsize);
  const free = Math.floor(s.freeBytes / frsize);
  const freeInodes = 0xffffffff - Math.min(s.files, 0xffffffff);
  return {
    bsize: frsize,
    frsize,
    blocks,
    bfree: free,
    bavail: free,
    files: 0xffffffff,
    ffree: freeInodes,
    favail: freeInodes,
    fsid: 0,
    flag: 0,
    namemax: NAME_MAX,
  };
}
