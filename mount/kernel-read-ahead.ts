import { promises as fsp } from 'fs';
import { logger } from '../server/common/log';

const log = logger('mount');

/**
 * Sets the kernel's read-ahead for the FUSE mount at `mountpoint` to `bytes`. It is the mount's
 * backing device's `read_ahead_kb`, which Linux sets to the smaller of its default (128 KiB) and
 * the file system's max_readahead (1 MiB here), so sequential reads arrived as requests of at
 * most 256 KiB, each a round trip through the mount; raised, they come as 1 MiB requests. Only
 * root may write it (and only where /sys is writable): otherwise the default stays, and reads
 * are only slower.
 */
export async function setKernelReadAhead(mountpoint: string, bytes: number): Promise<void> {
  try {
    const dev = await deviceOf(mountpoint);
    if (!dev) throw new Error('not in /proc/self/mountinfo');
    await fsp.writeFile(`/sys/class/bdi/${dev}/read_ahead_kb`, `${Math.ceil(bytes / 1024)}\n`);
  } catch (err) {
    log.info(`the kernel's read-ahead for ${mountpoint} stays at its default: ${(err as Error).message}`);
  }
}

/**
 * MAJ:MIN of the FUSE file system mounted last at `mountpoint` (its real path, as mountinfo
 * names it), from /proc/self/mountinfo: asking the mount itself, with a stat, would be a
 * request to this very process.
 */
async function deviceOf(mountpoint: string): Promise<string | null> {
  let dev: string | null = null;
  for (const line of (await fsp.readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER-OPTIONS
    const fields = line.split(' ');
    const fsType = fields[fields.indexOf('-') + 1] ?? '';
    const fuse = fsType === 'fuse' || fsType.startsWith('fuse.'); // not fuseblk: its device is a disk's
    if (fields.length > 4 && fuse && unescapeMountPath(fields[4]) === mountpoint) dev = fields[2];
  }
  return dev;
}

/** mountinfo writes space, tab, newline and backslash in paths as octal escapes (\040). */
function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}
