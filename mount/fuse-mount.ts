import { promises as fsp } from 'fs';
import * as path from 'path';
import { ChunkClientPool } from '../client/chunk-client';
import { PosixFs } from '../client/fs/posix-fs';
import { MasterClient } from '../client/master-client';
import { FsError } from '../server/common/fs-error';
import { logger } from '../server/common/log';
import { FuseSession, MAX_REQUEST_BYTES } from './fuse-binding';
import { FuseOps } from './fuse-ops';
import { setKernelReadAhead } from './kernel-read-ahead';
import { cleanStaleMount } from './stale-mount';

const log = logger('mount');

/** How long a call to the master may take, resends included (ms); under --op-timeout's 60 s. */
const MASTER_DEADLINE_MS = 30_000;

export interface MountOptions {
  mountpoint: string;
  /** HOST:PORT of the master */
  master: string;
  /** Seconds the kernel trusts a name lookup (names another mount removes linger this long). */
  entryTimeoutSec: number;
  /**
   * Seconds the kernel caches attributes. An open that finds a file changed by another mount
   * drops them, and its cached pages are dropped at every open: close-to-open consistency
   * across mounts. A stat may show another mount's change up to this late.
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
  /** read chunk files of chunkservers on this host directly (client/local-chunk-reads.ts) */
  localReads: boolean;
  /** seconds before what a mount gone without unmounting left unlinked while open is removed */
  orphanGraceSec: number;
  /** ms the mount polls for the master's answer to a lone namespace change (client/answer-poll.ts; 0: never) */
  answerPollMs: number;
}

/** A live mount: unmount() flushes open files, detaches the mount and closes connections. */
export interface Mounted {
  unmount(): Promise<void>;
}

/**
 * Mount options: the file system named after its master, the kernel checking permissions from
 * our modes (default_permissions) for every user (allow_other). Request sizes (1 MiB) and
 * cache times are the binding's and the replies' business.
 */
function mountOptions(master: string): string[] {
  return [`fsname=chunkfs#${master}`, 'subtype=chunkfs', 'default_permissions', 'allow_other'];
}

export async function mountChunkfs(options: MountOptions): Promise<Mounted> {
  const mountpoint = path.resolve(options.mountpoint);
  await cleanStaleMount(mountpoint);
  // Its real path (symlinks resolved), as the kernel names the mount; found before mounting,
  // while it is still the directory underneath.
  const underneath = await fsp.realpath(mountpoint).catch(() => mountpoint);
  // Calls ride out a master restart (recovery of a large namespace takes seconds) within the
  // deadline: a change caught by the break is sent again, and made once.
  const master = new MasterClient(options.master, {
    rideOutBreaks: true,
    deadlineMs: MASTER_DEADLINE_MS,
    dirLeases: true,
    answerPollMs: options.answerPollMs,
  });
  const peers = new ChunkClientPool({ localReads: options.localReads });
  const fs = new PosixFs(master, peers, options);
  let session: FuseSession | null = null;
  let unmounting: Promise<void> | null = null;
  const unmount = (): Promise<void> =>
    (unmounting ??= (async () => {
      await fs.closeAll();
      session?.unmount();
      master.close();
      peers.closeAll();
    })());
  const ops = new FuseOps(fs, options, () => {
    log.info(`${mountpoint} was unmounted`);
    void unmount();
  });
  try {
    session = new FuseSession(mountpoint, mountOptions(options.master), ops);
  } catch (err) {
    master.close();
    peers.closeAll();
    throw new FsError('EIO', `cannot mount ${mountpoint}: ${(err as Error).message}`);
  }
  ops.attach(session);
  await setKernelReadAhead(underneath, MAX_REQUEST_BYTES);
  return { unmount };
}
