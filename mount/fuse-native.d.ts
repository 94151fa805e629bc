/**
 * Types for fuse-native 2.2.6 as patched by patches/fuse-native.patch (the package ships none):
 * utimens gets both times distinctly ('now' / 'omit' for UTIME_NOW / UTIME_OMIT), fgetattr gets
 * its file handle, and create/mkdir/symlink/mknod get the calling process's uid and gid.
 * Callbacks take a negative errno (or 0) first.
 */
declare module 'fuse-native' {
  namespace Fuse {
    export interface FuseCaller {
      uid: number;
      gid: number;
    }

    /** Times in milliseconds since the epoch (fractions allowed). */
    export interface FuseStat {
      mode: number;
      uid: number;
      gid: number;
      size: number;
      nlink: number;
      ino: number;
      blksize: number;
      blocks: number;
      atime: number;
      mtime: number;
      ctime: number;
      dev?: number;
      rdev?: number;
    }

    export interface FuseStatfs {
      bsize: number;
      frsize: number;
      blocks: number;
      bfree: number;
      bavail: number;
      files: number;
      ffree: number;
      favail: number;
      fsid: number;
      flag: number;
      namemax: number;
    }

    /** A utimens time: milliseconds since the epoch, or a UTIME_NOW / UTIME_OMIT request. */
    export type FuseTime = number | 'now' | 'omit';

    type Done = (errno: number) => void;
    type DoneWith<T> = (errno: number, value?: T) => void;

    export interface FuseOperations {
      init?(cb: Done): void;
      statfs?(path: string, cb: DoneWith<FuseStatfs>): void;
      getattr?(path: string, cb: DoneWith<FuseStat>): void;
      fgetattr?(path: string, fd: number, cb: DoneWith<FuseStat>): void;
      access?(path: string, mode: number, cb: Done): void;
      readdir?(path: string, cb: (errno: number, names?: string[], stats?: FuseStat[]) => void): void;
      opendir?(path: string, flags: number, cb: DoneWith<number>): void;
      releasedir?(path: string, fd: number, cb: Done): void;
      readlink?(path: string, cb: DoneWith<string>): void;
      mkdir?(path: string, mode: number, caller: FuseCaller, cb: Done): void;
      rmdir?(path: string, cb: Done): void;
      create?(path: string, mode: number, flags: number, caller: FuseCaller, cb: DoneWith<number>): void;
      mknod?(path: string, mode: number, dev: number, caller: FuseCaller, cb: Done): void;
      open?(path: string, flags: number, cb: DoneWith<number>): void;
      read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytesOrErrno: number) => void): void;
      write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytesOrErrno: number) => void): void;
      flush?(path: string, fd: number, cb: Done): void;
      fsync?(path: string, datasync: number, fd: number, cb: Done): void;
      fsyncdir?(path: string, datasync: number, fd: number, cb: Done): void;
      release?(path: string, fd: number, cb: Done): void;
      truncate?(path: string, size: number, cb: Done): void;
      ftruncate?(path: string, fd: number, size: number, cb: Done): void;
      unlink?(path: string, cb: Done): void;
      rename?(src: string, dest: string, cb: Done): void;
      link?(src: string, dest: string, cb: Done): void;
      symlink?(target: string, path: string, caller: FuseCaller, cb: Done): void;
      chmod?(path: string, mode: number, cb: Done): void;
      chown?(path: string, uid: number, gid: number, cb: Done): void;
      utimens?(path: string, atime: FuseTime, mtime: FuseTime, cb: Done): void;
    }

    export interface FuseOptions {
      /** ms per operation before fuse-native answers it with a timeout error; false: never */
      timeout?: number | false;
      force?: boolean;
      mkdir?: boolean;
      debug?: boolean;
      allowOther?: boolean;
      defaultPermissions?: boolean;
      fsname?: string;
      subtype?: string;
      maxRead?: number;
      entryTimeout?: number;
      attrTimeout?: number;
    }

  }

  class Fuse {
    constructor(mnt: string, ops: Fuse.FuseOperations, opts?: Fuse.FuseOptions);
    readonly mnt: string;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    protected _fuseOptions(): string;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
  }

  export = Fuse;
}
