import type { ChunkserverState } from './chunkserver-states';

/**
 * Mutation records: what the operation log stores and what Namespace.apply() executes.
 *
 * A record carries every value that is not a pure function of the namespace state (the new
 * inode number, the clock), so applying the same records in the same order always yields the
 * same namespace: live, on recovery, and on backup/shadow masters.
 */
/**
 * A change a client may send again after its connection broke: the call's retry key, logged
 * with it, tells a repeat apart (retry-keys.ts). Absent from records of other clients and of
 * logs written before it existed.
 */
interface Retriable {
  retryKey?: string;
}
/** What every mutation that makes a new inode carries. */
interface NewInodeMutation extends Retriable {
  path: string;
  uid: number;
  gid: number;
  ino: number;
  /** ms since the epoch */
  time: number;
}
export interface MkdirMutation extends NewInodeMutation {
  op: 'mkdir';
  /** permission bits */
  mode: number;
}
export interface CreateMutation extends NewInodeMutation {
  op: 'create';
  /** permission bits */
  mode: number;
  /**
   * Replicas each chunk should have. The master always records one; records logged before
   * factors were per file lack it, and those files follow the cluster default.
   */
  replication?: number;
}
export interface SymlinkMutation extends NewInodeMutation {
  op: 'symlink';
  target: string;
}
/** A FIFO, socket or device node: stored, never opened through ChunkFS (the kernel does). */
export interface MknodMutation extends NewInodeMutation {
  op: 'mknod';
  /** file-type bits (one of SPECIAL_TYPES) | permission bits */
  mode: number;
  /** character and block devices: the device number; 0 otherwise */
  rdev: number;
}
export interface LinkMutation extends Retriable {
  op: 'link';
  existing: string;
  path: string;
  time: number;
}
export interface UnlinkMutation extends Retriable {
  op: 'unlink';
  path: string;
  time: number;
}
export interface RmdirMutation extends Retriable {
  op: 'rmdir';
  path: string;
  time: number;
}
export interface RenameMutation extends Retriable {
  op: 'rename';
  from: string;
  to: string;
  time: number;
  /** renameat2's RENAME_EXCHANGE: the two names swap inodes (absent in older records). */
  exchange?: boolean;
}
/** setattr changes; absent fields stay as they are. */
export interface AttrChanges {
  /** permission bits */
  mode?: number;
  uid?: number;
  gid?: number;
  /** bytes */
  size?: number;
  /** With `size`: grow to it if smaller, never shrink, and set mtime (see proto SetAttrRequest.grow_only). */
  growOnly?: boolean;
  /** ms since the epoch */
  atimeMs?: number;
  mtimeMs?: number;
}
export interface SetattrMutation extends AttrChanges {
  op: 'setattr';
  path: string;
  time: number;
  /** With `size`: the cluster's chunk size (bytes); chunks wholly past the new size are dropped. */
  chunkSize?: number;
}

/** A regular file's replication factor (hdfs dfs -setrep); the monitor adds or trims replicas. */
export interface SetReplicationMutation {
  op: 'setReplication';
  path: string;
  replication: number;
  /** ms since the epoch */
  time: number;
}

/** setxattr(2) on the inode at `path`. */
export interface SetXattrMutation extends Retriable {
  op: 'setXattr';
  path: string;
  name: string;
  /** the value, base64 */
  value: string;
  /** XATTR_CREATE, XATTR_REPLACE or 0 (xattrs.ts) */
  flags: number;
  /** ms since the epoch (the inode's new ctime) */
  time: number;
}

/** removexattr(2) on the inode at `path`. */
export interface RemoveXattrMutation extends Retriable {
  op: 'removeXattr';
  path: string;
  name: string;
  /** ms since the epoch (the inode's new ctime) */
  time: number;
}

/**
 * A new chunk at position `index` of a file (holes before it stay holes), or a new handle for an
 * unwritten one there (namespace.ts UNWRITTEN).
 */
export interface AddChunkMutation {
  op: 'addChunk';
  path: string;
  /** the chunk's position in the file: byte offset / chunk size */
  index: number;
  handle: number;
  /** UNWRITTEN (0) for chunks allocated since lazy replica creation; 1 before it */
  version: number;
}

/**
 * Handles up to `upTo` are taken. Logged before handles are used, in batches, so that a master
 * restarting after a crash never hands out a handle that some chunkserver may already hold.
 */
export interface ReserveHandlesMutation {
  op: 'reserveHandles';
  upTo: number;
}

/** A chunk's new version, given when a write lease is granted. */
export interface SetChunkVersionMutation {
  op: 'setChunkVersion';
  path: string;
  index: number;
  handle: number;
  version: number;
}

/**
 * An operator changed a chunkserver's admin state (decommissioning it, or marking it drained):
 * logged so that it survives master restarts. See chunkserver-states.ts.
 */
export interface SetChunkserverStateMutation {
  op: 'setChunkserverState';
  /** the chunkserver's stable id */
  id: string;
  state: ChunkserverState;
}

export type Mutation =
  | MkdirMutation
  | CreateMutation
  | SymlinkMutation
  | MknodMutation
  | LinkMutation
  | UnlinkMutation
  | RmdirMutation
  | RenameMutation
  | SetXattrMutation
  | RemoveXattrMutation
  | SetattrMutation
  | SetReplicationMutation
  | AddChunkMutation
  | ReserveHandlesMutation
  | SetChunkVersionMutation
  | SetChunkserverStateMutation;

export type MutationOp = Mutation['op'];
