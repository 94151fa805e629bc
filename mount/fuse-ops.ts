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
    getattr: (path, cb) => answer('getattr', path, fs.getattr(path).then(statOf), cb),
    fgetattr: (path, fd, cb) => answer('fgetattr', path, fs.fgetattr(path, fd).then(statOf), cb),
    readdir: (path, cb) => answer('readdir', path, fs.readdir(path), cb),
    readlink: (path, cb) => answer('readlink', path, fs.readlink(path), cb),
    statfs: (path, cb) => answer('statfs', path, fs.statfs().then(statfsOf), cb),
    mkdir: (path, mode, caller, cb) => answer('mkdir', path, fs.mkdir(path, mode, caller), cb),
    rmdir: (path, cb) => answer('rmdir', path, fs.rmdir(path), cb),
    mknod: (path, mode, _dev, caller, cb) => answer('mknod', path, fs.mknod(path, mode, caller), cb),
    symlink: (target, path, caller, cb) => answer('symlink', path, fs.symlink(target, path, caller), cb),
    link: (existing, path, cb) => answer('link', path, fs.link(existing, path), cb),
    unlink: (path, cb) => answer('unlink', path, fs.unlink(path), cb),
    rename: (from, to, cb) => answer('rename', from, fs.rename(from, to), cb),
    chmod: (path, mode, cb) => answer('chmod', path, fs.chmod(path, mode), cb),
    chown: (path, uid, gid, cb) => answer('chown', path, fs.chown(path, uid, gid), cb),
    utimens: (path, atime, mtime, cb) => answer('utimens', path, fs.utimens(path, atime, mtime), cb),
    truncate: (path, size, cb) => answer('truncate', path, fs.truncate(path, size), cb),
    ftruncate: (path, fd, size, cb) => answer('ftruncate', path, fs.ftruncate(fd, size), cb),
    create: (path, mode, flags, caller, cb) => answer('create', path, fs.create(path, mode, flags, caller), cb),
    open: (path, flags, cb) => answer('open', path, fs.openExisting(path, flags), cb),
    read: (path, fd, buf, len, pos, cb) =>
      answer(`read ${len}@${pos}`, path, fs.read(fd, pos, len).then((data) => data.copy(buf, 0, 0, Math.min(len, data.length))), bytes(cb)),
    write: (path, fd, buf, len, pos, cb) => answer(`write ${len}@${pos}`, path, fs.write(fd, pos, buf.subarray(0, len)), bytes(cb)),
    flush: (path, fd, cb) => answer('flush', path, fs.flush(fd), cb),
    fsync: (path, _datasync, fd, cb) => answer('fsync', path, fs.fsync(fd), cb),
    release: (path, fd, cb) => answer('release', path, fs.release(fd), cb),
    // Directories need no handle state: listings are read whole by readdir.
    opendir: (_path, _flags, cb) => cb(0, 0),
    releasedir: (_path, _fd, cb) => cb(0),
    fsyncdir: (_path, _datasync, _fd, cb) => cb(0), // namespace changes are durable when answered
  };
}

/** read and write answer with a byte count where others answer 0: a failure is still its negative errno. */
function bytes(cb: (result: number) => void): (errno: number, n?: number) => void {
  return (errno, n) => cb(errno < 0 ? errno : n!);
}

/** Settles a FUSE callback: 0 and the value, or the negative errno (timed, with CHUNKFS_LOG=debug). */
function answer<T>(op: string, path: string, work: Promise<T>, cb: (errno: number, value?: T) => void): void {
  if (log.debugEnabled) {
    const t0 = performance.now();
    const took = (): string => `${(performance.now() - t0).toFixed(2)} ms`;
    work.then((value) => { log.debug(`${op} ${path} ${took()}`); cb(0, value); }, (err) => { log.debug(`${op} ${path} failed ${took()}`); cb(fail(err, op, path)); });
    return;
  }
  work.then((value) => cb(0, value), (err) => cb(fail(err, op, path)));
}

/** The negative errno of any failure; errors that are not plain file-system answers are logged. */
function fail(err: unknown, op: string, path: string): number {
  const e = toFsError(err);
  if (e.code === 'EIO' || e.code === 'ETIMEDOUT' || e.code === 'ESTALE') log.warn(`${op} ${path}: ${e.message}`);
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
