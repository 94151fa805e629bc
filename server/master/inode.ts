/** File-type bits of st_mode (Linux values). */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFSOCK = 0o140000;
/** Types mknod makes besides regular files: the master stores them, the kernel opens them. */
export const SPECIAL_TYPES: readonly number[] = [S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK];
export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const S_IXGRP = 0o0010;
/** Permission and special bits a client may set with chmod. */
export const PERMISSION_BITS = 0o7777;

/** Size reported for directories, like most local file systems. */
export const DIR_SIZE = 4096;

/** A chunk of a file: its handle and version (filled by the chunk-manager issue). */
export interface ChunkRef {
  handle: number;
  version: number;
}

/**
 * One inode, kept small because the master holds every inode of the cluster in memory
 * (target: <= 300 heap bytes per file). Fields that only one file type uses are null otherwise.
 */
export class Inode {
  constructor(
    readonly ino: number,
    /** st_mode: type bits | permission bits. */
    public mode: number,
    public uid: number,
    public gid: number,
    /** Milliseconds since the epoch (fractions allowed). */
    public atimeMs: number,
    public mtimeMs: number,
    public ctimeMs: number,
    public nlink: number,
    /** Bytes; DIR_SIZE for directories, the target's byte length for symlinks. */
    public size: number,
    /** Directories: name -> child, in insertion order (readdir order). */
    public children: Map<string, Inode> | null,
    /** Symlinks: the target. */
    public target: string | null,
    /** Regular files: chunk list. */
    public chunks: ChunkRef[] | null,
    /**
     * Regular files: replicas each chunk should have. 0 = never recorded (files created before
     * factors were per file): the cluster default applies, see Namespace.replicationOf.
     */
    public replication = 0,
    /** Character and block devices: the device number (Linux new_encode_dev); 0 otherwise. */
    public rdev = 0,
  ) {}

  /** Extended attributes, name then value (xattrs.ts); null while there are none. */
  xattrs: string[] | null = null;

  get isDir(): boolean {
    return (this.mode & S_IFMT) === S_IFDIR;
  }
  get isFile(): boolean {
    return (this.mode & S_IFMT) === S_IFREG;
  }
  get isSymlink(): boolean {
    return (this.mode & S_IFMT) === S_IFLNK;
  }
  /** An Inode serves as its own Attr where only the fields are read (a listing's encoding). */
  get hasXattrs(): boolean {
    return this.xattrs !== null;
  }
  /** A FIFO, socket or device node (see SPECIAL_TYPES). */
  get isSpecial(): boolean {
    return SPECIAL_TYPES.includes(this.mode & S_IFMT);
  }
}

/** The attributes the master hands out (plain data, safe to serialise). */
export interface Attr {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  /** bytes */
  size: number;
  /** milliseconds since the epoch */
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  /** Regular files: replicas each chunk should have; 0 for other types. */
  replication: number;
  /** Character and block devices: the device number; 0 for other types. */
  rdev: number;
  /** Whether it has extended attributes (a mount answers lookups of names from this). */
  hasXattrs: boolean;
}

/** The attributes of `n`; a file's unrecorded factor (0) reads as `defaultReplication`. */
export function attrOf(n: Inode, defaultReplication = 0): Attr {
  return {
    ino: n.ino,
    mode: n.mode,
    uid: n.uid,
    gid: n.gid,
    nlink: n.nlink,
    size: n.size,
    atimeMs: n.atimeMs,
    mtimeMs: n.mtimeMs,
    ctimeMs: n.ctimeMs,
    replication: n.isFile ? n.replication || defaultReplication : 0,
    rdev: n.rdev,
    hasXattrs: n.hasXattrs,
  };
}
