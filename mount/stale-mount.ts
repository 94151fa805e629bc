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

/**
 * Detaches the mount at `mountpoint` if its process died: such a mount answers ENOTCONN
 * ("Transport endpoint is not connected"). True when it did.
 */
export async function cleanStaleMount(mountpoint: string): Promise<boolean> {
  try {
    await fsp.stat(mountpoint);
    return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOTCONN') return false;
    await unmountPath(mountpoint);
    return true;
  }
}
