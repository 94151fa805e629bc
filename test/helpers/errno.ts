import { ErrnoName, FsError } from '../../server/common/fs-error';

/** Runs fn; returns the FsError code it threw, or null. Anything else thrown fails the test. */
export function codeOf(fn: () => unknown): ErrnoName | null {
  try {
    fn();
    return null;
  } catch (err) {
    if (err instanceof FsError) return err.code;
    throw err;
  }
}
