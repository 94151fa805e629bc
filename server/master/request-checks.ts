import { FsError } from '../common/fs-error';
import type { Caller__Output } from '../../generated/chunkfs/Caller';
import { PERMISSION_BITS } from './inode';
import type { AttrChanges } from './mutation';

/**
 * Checks on numbers that arrive over the wire, before they reach a mutation record: the log
 * must never hold a value the namespace could not have produced itself.
 */

/** Permission bits (0..0o7777). */
export function checkMode(mode: number): number {
  if (!Number.isInteger(mode) || mode < 0 || mode > PERMISSION_BITS) {
    throw new FsError('EINVAL', `mode 0o${mode.toString(8)} is not within 0o7777`);
  }
  return mode;
}

/** A file size in bytes; uint64 values beyond 2^53 arrive rounded, so refuse them. */
export function checkSize(size: number): number {
  if (!Number.isSafeInteger(size) || size < 0) throw new FsError('EINVAL', `bad size ${size}`);
  return size;
}

/** A timestamp in milliseconds since the epoch. */
export function checkTimeMs(ms: number): number {
  if (!Number.isFinite(ms)) throw new FsError('EINVAL', `bad time ${ms}`);
  return ms;
}

/** A uid or gid: 0 .. 2^32-2 (2^32-1 is the "no change" value of chown(2)). */
export function checkOwnerId(id: number): number {
  if (!Number.isInteger(id) || id < 0 || id > 0xfffffffe) throw new FsError('EINVAL', `bad owner id ${id}`);
  return id;
}

/**
 * Every numeric field of an attribute change. Clients must call this before sending: protobuf's
 * unsigned fields silently turn -1 into 0 and 2.5 into 2, so the master would never see the
 * bad value (a size of -1 would truncate the file to nothing).
 */
export function checkAttrChanges(c: AttrChanges): AttrChanges {
  if (c.mode !== undefined) checkMode(c.mode);
  if (c.uid !== undefined) checkOwnerId(c.uid);
  if (c.gid !== undefined) checkOwnerId(c.gid);
  if (c.size !== undefined) checkSize(c.size);
  if (c.atimeMs !== undefined) checkTimeMs(c.atimeMs);
  if (c.mtimeMs !== undefined) checkTimeMs(c.mtimeMs);
  return c;
}

/** Most replicas a file may ask for (HDFS caps its factor too: dfs.replication.max). */
export const MAX_REPLICATION = 32;
/** The cluster default when the master is given none. */
export const DEFAULT_REPLICATION = 3;
/** Seconds a deleted file's chunks are kept before they are removed, when the master is given no --gc-delay. */
export const DEFAULT_GC_DELAY_SEC = 60;

/** A replication factor: a whole number of replicas, 1..MAX_REPLICATION. */
export function checkReplication(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > MAX_REPLICATION) {
    throw new FsError('EINVAL', `replication factor ${n} is not a whole number from 1 to ${MAX_REPLICATION}`);
  }
  return n;
}

/** A chunk's position in its file. */
export function checkChunkIndex(index: number): number {
  if (!Number.isSafeInteger(index) || index < 0) throw new FsError('EINVAL', `bad chunk index ${index}`);
  return index;
}

/** The owner of new inodes: the caller, or root when the request names none. */
export function ownerOf(caller: Caller__Output | null): { uid: number; gid: number } {
  return { uid: caller?.uid ?? 0, gid: caller?.gid ?? 0 };
}
