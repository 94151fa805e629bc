import { FsError } from '../../server/common/fs-error';

/** Calls by an open file's name made at most this many times (each after a relocation). */
const ATTEMPTS = 3;

/** An open file whose name may change under it (see OpenFile.relocate). */
export interface Relocatable {
  /** Asks the master for the file's name now and goes by it; ESTALE when it has none. */
  relocate(): Promise<void>;
}

/**
 * `lookup`, the attributes at an open file's name, when they are the file's: ESTALE when the
 * name names another inode, or (ENOENT) none (byCurrentName then finds the file again).
 */
export async function ofSameFile<T extends { ino: number }>(file: { readonly path: string; readonly ino: number }, lookup: Promise<T>): Promise<T> {
  const attr = await lookup.catch((err: unknown) => {
    throw err instanceof FsError && err.code === 'ENOENT' ? new FsError('ESTALE', err.message) : err;
  });
  if (attr.ino !== file.ino) throw new FsError('ESTALE', `${file.path} is inode ${attr.ino}, not inode ${file.ino}`);
  return attr;
}

/**
 * A master call by an open file's name now, with its inode (see FileTarget in file-writer.ts).
 * ESTALE means the name no longer names the file: it was renamed, by this mount (the answer
 * not here yet) or by another client. The file's name is then asked for by its inode, and the
 * call made again by it, a bounded number of times (an ESTALE with another cause, a chunk
 * another client truncated away, stands); when no name has the file (removed by another
 * client), the relocation's ESTALE is thrown. A call never reaches a file that took the name.
 */
export async function byCurrentName<T>(file: Relocatable, call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof FsError && err.code === 'ESTALE') || attempt === ATTEMPTS) throw err;
      await file.relocate();
    }
  }
}
