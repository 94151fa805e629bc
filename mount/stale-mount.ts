import { execFile } from 'child_process';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import { FsError } from '../server/common/fs-error';

const run = promisify(execFile);

/** `fusermount -uz`: detaches a mount even while it is busy or its process is gone. */
export async function unmountPath(mountpoint: string): Promise<void> {
  try {
    await run('fusermount', ['-uz', path.resolve(mountpoint)]);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new FsError('EINVAL', `cannot unmount ${mountpoint}: ${stderr || (err as Error).message}`);
  }
}

/** What a FUSE mount whose process died answers (ECONNABORTED: a request the death caught). */
const DEAD_MOUNT = new Set(['ENOTCONN', 'ECONNABORTED']);

/**
 * Detaches the mount at `mountpoint` if its process died: such a mount answers ENOTCONN
 * ("Transport endpoint is not connected"). Asked with statfs, which the kernel always sends to
 * the mount's process: a stat may be answered from its attribute cache, and then a dead mount
 * passed for a live one. True when it detached one.
 */
export async function cleanStaleMount(mountpoint: string): Promise<boolean> {
  try {
    await fsp.statfs(mountpoint);
    return false;
  } catch (err) {
    if (!DEAD_MOUNT.has((err as NodeJS.ErrnoException).code ?? '')) return false;
    await unmountPath(mountpoint);
    return true;
  }
}
