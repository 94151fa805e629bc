import { FsError } from '../common/fs-error';
import { isRawName, rawLength } from '../common/raw-names';

/** Linux NAME_MAX: bytes in one path component. */
export const MAX_NAME_BYTES = 255;
/** Linux PATH_MAX counts the terminating NUL: a symlink's target has at most 4095 bytes. */
export const MAX_TARGET_BYTES = 4096;
/**
 * Bytes in a master path: a bound against runaway requests, not PATH_MAX. The kernel holds each
 * syscall's path argument to PATH_MAX, but a tree may go deeper (a process working inside it
 * uses relative paths), and the mount names every file by its whole path from the root.
 */
export const MAX_PATH_BYTES = 1 << 20;

/**
 * Splits an absolute master path into its components, rejecting anything the kernel would
 * never send: relative paths, empty components (`//`, trailing `/`), `.`/`..`, NUL.
 * "/" gives []. Throws FsError; the caller has changed nothing yet.
 */
export function splitPath(path: string): string[] {
  if (typeof path !== 'string' || path.length === 0) throw new FsError('EINVAL', 'empty path');
  if (rawLength(path) >= MAX_PATH_BYTES) {
    throw new FsError('ENAMETOOLONG', `path of ${rawLength(path)} bytes (limit ${MAX_PATH_BYTES - 1})`);
  }
  if (path[0] !== '/') throw new FsError('EINVAL', `path must be absolute: ${JSON.stringify(path)}`);
  if (path.includes('\0')) throw new FsError('EINVAL', 'NUL byte in path');
  if (path === '/') return [];
  const parts = path.slice(1).split('/');
  for (const name of parts) checkName(name);
  return parts;
}

/** One directory-entry name: not empty, not `.`/`..`, no `/` or NUL, at most 255 bytes, as the mount makes names. */
export function checkName(name: string): void {
  if (name.length === 0) throw new FsError('EINVAL', 'empty name in path');
  if (name === '.' || name === '..') throw new FsError('EINVAL', `'${name}' is not allowed as a name`);
  if (name.includes('/') || name.includes('\0')) throw new FsError('EINVAL', 'name contains / or NUL');
  if (rawLength(name) > MAX_NAME_BYTES) {
    throw new FsError('ENAMETOOLONG', `name of ${rawLength(name)} bytes (limit ${MAX_NAME_BYTES})`);
  }
  if (!isRawName(name)) throw new FsError('EINVAL', `name ${JSON.stringify(name)} stands for the bytes of another (common/raw-names.ts)`);
}

/** True when `inner` equals `outer` or lies below it (both as component lists). */
export function isSameOrBelow(inner: readonly string[], outer: readonly string[]): boolean {
  if (inner.length < outer.length) return false;
  for (let i = 0; i < outer.length; i++) if (inner[i] !== outer[i]) return false;
  return true;
}
