import { FsError } from '../../server/common/fs-error';

/** Tries of a call by an open file's name that meets another file (ESTALE), this far apart (ms, growing). */
const ATTEMPTS = 4;
const PAUSE_MS = 250;

/**
 * A master call by an open file's name now, with its inode (see FileTarget in file-writer.ts).
 * ESTALE means the file was renamed since the call went out (the name it had names another
 * file, or none): the call is made again, by then by the name the rename's answer gave it. A
 * rename by another mount leaves it failing, never reaching the file that took the name.
 */
export async function byCurrentName<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof FsError && err.code === 'ESTALE') || attempt === ATTEMPTS) throw err;
      await new Promise((r) => setTimeout(r, PAUSE_MS * attempt));
    }
  }
}
