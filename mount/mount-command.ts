import type { CommandModule } from 'yargs';
import { exitOnSignals } from '../server/common/shutdown';
import { unmountPath } from './stale-mount';

interface MountArgs {
  mountpoint: string;
  masters: string;
  'entry-timeout': number;
  'attr-timeout': number;
  'attr-cache': number;
  'op-timeout': number;
  'write-buffer': number;
  'read-ahead': number;
  'local-reads': boolean;
  'orphan-grace': number;
  'answer-poll': number;
}

const MiB = 1024 * 1024;

/**
 * `chunkfs mount MOUNTPOINT --masters HOST:PORT[,...]`: serves the mount in the foreground,
 * prints `mounted MOUNTPOINT` on stdout once it is usable, and unmounts (after flushing open
 * files) on SIGINT/SIGTERM. A stale mount left by a dead process is cleaned first.
 */
export const mountCommand: CommandModule<object, MountArgs> = {
  command: 'mount <mountpoint>',
  describe: 'mount the cluster as a directory (foreground; Ctrl-C unmounts)',
  builder: (y) =>
    y
      .positional('mountpoint', { type: 'string', demandOption: true, describe: 'an existing empty directory' })
      .option('masters', {
        type: 'string',
        default: process.env.CHUNKFS_MASTER || '127.0.0.1:9000',
        defaultDescription: '$CHUNKFS_MASTER or 127.0.0.1:9000',
        requiresArg: true,
        describe: 'HOST:PORT[,HOST:PORT...] of the masters',
      })
      .option('entry-timeout', { type: 'number', default: 1, describe: 'seconds the kernel trusts a name lookup' })
      .option('attr-timeout', { type: 'number', default: 1, describe: 'seconds the kernel caches attributes (every open that sees a change from another mount drops them)' })
      .option('attr-cache', { type: 'number', default: 1, describe: 'seconds stat is answered from the mount\'s cache (any change clears it; every open asks the master)' })
      .option('op-timeout', { type: 'number', default: 60, describe: 'seconds after which an unanswered operation fails (ETIMEDOUT)' })
      .option('write-buffer', { type: 'number', default: 8, describe: 'MiB buffered per open file before a background flush' })
      .option('read-ahead', { type: 'number', default: 16, describe: 'MiB read ahead of sequential reads (fetched in four pieces at once)' })
      .option('orphan-grace', { type: 'number', default: 900, describe: 'seconds before files another mount unlinked while open are removed once that mount is gone without unmounting (killed, its machine lost)' })
      .option('local-reads', { type: 'boolean', default: true, describe: 'read the chunk files of chunkservers on this host directly (--no-local-reads: always through them)' })
      .option('answer-poll', {
        type: 'number',
        default: 1,
        describe: 'ms the mount polls, instead of sleeping, for the master\'s answer to a namespace change (mkdir, unlink, rename...; not a create) made alone: spends CPU to spare the wake-up of an idle CPU (0: never)',
      })
      .check((a) => {
        for (const flag of ['entry-timeout', 'attr-timeout', 'attr-cache'] as const) {
          if (!(a[flag] >= 0)) return `--${flag} must be a number of seconds >= 0`;
        }
        for (const flag of ['op-timeout', 'write-buffer', 'read-ahead'] as const) {
          if (!(a[flag] > 0)) return `--${flag} must be a positive number`;
        }
        if (a['read-ahead'] > 64) return '--read-ahead is at most 64 MiB';
        if (!(a['answer-poll'] >= 0 && a['answer-poll'] <= 100)) return '--answer-poll must be 0..100 ms';
        // Its timers run at fractions of it: under a second they could not keep a marker fresh,
        // and setInterval takes at most 2^31 ms.
        if (!(a['orphan-grace'] >= 1 && a['orphan-grace'] <= 1_000_000)) return '--orphan-grace must be 1..1000000 seconds';
        return true;
      }),
  handler: async (args) => {
    const { mountChunkfs } = await import('./fuse-mount');
    const mounted = await mountChunkfs({
      mountpoint: args.mountpoint,
      master: args.masters.split(',')[0].trim(),
      entryTimeoutSec: args['entry-timeout'],
      attrTimeoutSec: args['attr-timeout'],
      attrCacheSec: args['attr-cache'],
      opTimeoutMs: args['op-timeout'] * 1000,
      writeBufferBytes: Math.round(args['write-buffer'] * MiB),
      readAheadBytes: Math.round(args['read-ahead'] * MiB),
      localReads: args['local-reads'],
      orphanGraceSec: args['orphan-grace'],
      answerPollMs: args['answer-poll'],
    });
    console.log(`mounted ${args.mountpoint}`);
    exitOnSignals(() => mounted.unmount());
  },
};

export const umountCommand: CommandModule<object, { mountpoint: string }> = {
  command: 'umount <mountpoint>',
  describe: 'unmount a ChunkFS mount (lazily, even while busy)',
  builder: (y) => y.positional('mountpoint', { type: 'string', demandOption: true }),
  handler: async (args) => {
    await unmountPath(args.mountpoint);
  },
};
