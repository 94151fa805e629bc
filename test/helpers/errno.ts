import { strict as assert } from 'assert';
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

/** Awaits `p`, which must reject with an FsError of `code` (and a message matching `message`). */
export async function expectErrno(p: Promise<unknown>, code: ErrnoName, message?: RegExp): Promise<FsError> {
  let caught: FsError | undefined;
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof FsError, `expected an FsError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    caught = err;
    return true;
  });
  return caught!;
}
