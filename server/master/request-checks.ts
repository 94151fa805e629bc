import { FsError } from '../common/fs-error';
import type { Caller__Output } from '../../generated/chunkfs/Caller';
import { PERMISSION_BITS } from './inode';

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

/** The owner of new inodes: the caller, or root when the request names none. */
export function ownerOf(caller: Caller__Output | null): { uid: number; gid: number } {
  return { uid: caller?.uid ?? 0, gid: caller?.gid ?? 0 };
}
