import { execFile } from 'child_process';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import Fuse from 'fuse-native';
import { ChunkClientPool } from '../client/chunk-client';
import { PosixFs } from '../client/fs/posix-fs';
import { MasterClient } from '../client/master-client';
import { FsError } from '../server/common/fs-error';
import { fuseOperations } from './fuse-ops';

const run = promisify(execFile);

/** How long a call to the master may take, resends included (ms); under --op-timeout's 60 s. */
const MASTER_DEADLINE_MS = 30_000;

/** libfuse 2.9 caps requests at 128 KiB whatever is asked. */
const MAX_REQUEST_BYTES = 128 * 1024;

export interface MountOptions {
  mountpoint: string;
  /** HOST:PORT of the master */
  master: string;
  /** Seconds the kernel trusts a name lookup (names another mount removes linger this long). */
  entryTimeoutSec: number;
  /**
   * Seconds the kernel caches attributes. With 0 (the default) a read past the size the kernel
   * knows asks for fresh attributes first, which with the page cache dropped at every open
   * gives close-to-open consistency across mounts; more saves getattr calls but may show
   * another mount's file at an old size.
   */
  attrTimeoutSec: number;
  /** an operation still unanswered after this long fails with ETIMEDOUT (ms) */
  opTimeoutMs: number;
  /** seconds the mount answers stat from its own attribute cache (cleared by every change; opens always ask) */
  attrCacheSec: number;
  /** dirty bytes per open file that start a background flush */
  writeBufferBytes: number;
  /** bytes read ahead once reads are sequential */
  readAheadBytes: number;
}

/** A live mount: unmount() flushes open files, detaches the mount and closes connections. */
export interface Mounted {
  unmount(): Promise<void>;
}

/**
 * fuse-native with the -o options it has no settings for: large requests (big_writes,
 * max_write, max_read; without them the kernel sends 4 KiB writes), st_ino from the master
 * (use_ino: tar, rsync and cp see hard links), the kernel checking permissions from our modes
 * (default_permissions) for every user (allow_other), and no negative lookups cached (a name
 * another mount creates must appear).
 */
class ChunkfsFuse extends Fuse {
  constructor(
    mountpoint: string,
    ops: Fuse.FuseOperations,
    private readonly options: MountOptions,
  ) {
    super(mountpoint, ops, { timeout: options.opTimeoutMs });
  }

  protected override _fuseOptions(): string {
    return '-o' + [
      `fsname=chunkfs#${this.options.master}`, 'subtype=chunkfs',
      'big_writes', `max_write=${MAX_REQUEST_BYTES}`, `max_read=${MAX_REQUEST_BYTES}`,
      'use_ino', 'readdir_ino', 'default_permissions', 'allow_other',
      `entry_timeout=${this.options.entryTimeoutSec}`, `attr_timeout=${this.options.attrTimeoutSec}`, 'negative_timeout=0',
    ].join(',');
  }
}

export async function mountChunkfs(options: MountOptions): Promise<Mounted> {
  const mountpoint = path.resolve(options.mountpoint);
  await cleanStaleMount(mountpoint);
  // Reads ride out a master restart (recovery of a large namespace takes seconds) within the
  // deadline; a mutation whose session breaks fails at once with EIO.
  const master = new MasterClient(options.master, { resendReads: true, deadlineMs: MASTER_DEADLINE_MS });
  const peers = new ChunkClientPool();
  const fs = new PosixFs(master, peers, options);
  const fuse = new ChunkfsFuse(mountpoint, fuseOperations(fs), { ...options, mountpoint });
  try {
    await promisify(fuse.mount.bind(fuse))();
  } catch (err) {
    master.close();
    peers.closeAll();
    throw new FsError('EIO', `cannot mount ${mountpoint}: ${(err as Error).message}`);
  }
  return {
    unmount: async () => {
      await fs.closeAll();
      await promisify(fuse.unmount.bind(fuse))().catch(() => unmountPath(mountpoint));
      master.close();
      peers.closeAll();
    },
  };
}

/** `fusermount -uz`: detaches a mount even while it is busy or its process is gone. */
export async function unmountPath(mountpoint: string): Promise<void> {
  try {
    await run('fusermount', ['-uz', path.resolve(mountpoint)]);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new FsError('EINVAL', `cannot unmount ${mountpoint}: ${stderr || (err as Error).message}`);
  }
}

/** A mount whose process died answers ENOTCONN ("Transport endpoint is not connected"). */
async function cleanStaleMount(mountpoint: string): Promise<void> {
  try {
    await fsp.stat(mountpoint);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTCONN') await unmountPath(mountpoint);
  }
}
