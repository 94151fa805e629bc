import * as fs from 'fs';

/**
 * What tells two processes that they see the same directory: the same kernel (its boot id,
 * shared by every process and container it runs) and, at the path each uses, the same device
 * and inode. A path alone proves nothing: another host, or another mount namespace on this
 * one, may have a different directory there.
 */

/** This kernel's boot id, or '' where /proc does not say (then nothing counts as local). */
export async function bootId(): Promise<string> {
  try {
    return (await fs.promises.readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  } catch {
    return '';
  }
}

/** "device:inode" of a file as stat gives it. */
export const statIdentity = (st: { dev: number | bigint; ino: number | bigint }): string => `${st.dev}:${st.ino}`;

/** "device:inode" of the directory at `dir`, or null when it cannot be stat'ed. */
export async function dirIdentity(dir: string): Promise<string | null> {
  try {
    const st = await fs.promises.stat(dir, { bigint: true });
    return st.isDirectory() ? statIdentity(st) : null;
  } catch {
    return null;
  }
}
