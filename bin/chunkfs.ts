import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { adminCommand } from '../client/cli/admin-commands';
import { benchCommand } from '../client/cli/bench-command';
import { withDataCommands } from '../client/cli/data-commands';
import { withFileCommands } from '../client/cli/file-commands';
import { upCommand } from '../client/cli/up-command';
import { mountCommand, umountCommand } from '../mount/mount-command';
import { FsError } from '../server/common/fs-error';
import { StartupError } from '../server/common/startup-error';
import { DEFAULT_GC_DELAY_SEC, DEFAULT_REPLICATION, MAX_REPLICATION } from '../server/master/request-checks';

/**
 * `chunkfs`: parses flags and dispatches. Exit status: 0 ok, 1 the operation failed
 * ("chunkfs: ERRNO: message" on stderr), 2 usage error.
 */
const withServers = yargs(hideBin(process.argv))
  .scriptName('chunkfs')
  .command({
    command: 'master',
    describe: 'run a primary master',
    builder: (y) => y
      .option('meta-dir', { type: 'string', array: true, demandOption: true, requiresArg: true,
        describe: 'metadata directory (repeat to keep copies on several disks)' })
      .option('listen', { type: 'string', demandOption: true, requiresArg: true, describe: 'HOST:PORT (port 0: any free port)' })
      .option('checkpoint-txns', { type: 'number', describe: 'checkpoint after this many transactions' })
      .option('checkpoint-period', { type: 'number', describe: 'checkpoint at least this often (seconds)' })
      .option('dead-timeout', { type: 'number', describe: 'a chunkserver silent this long (seconds) is dead [default: 5]' })
      .option('replication', { type: 'number',
        describe: `replication factor of files created without one, 1..${MAX_REPLICATION} [default: ${DEFAULT_REPLICATION}]` })
      .option('chunk-size', { type: 'number', describe: 'bytes per chunk, cluster-wide [default: 64 MiB]' })
      .option('gc-delay', { type: 'number',
        describe: `seconds a deleted file's chunks stay on the chunkservers before they are removed [default: ${DEFAULT_GC_DELAY_SEC}]` })
      .option('replication-interval', { type: 'number',
        describe: 'seconds between looks at every chunk for missing, surplus and stale replicas [default: 1]' })
      .check((a) => {
        for (const flag of ['checkpoint-txns', 'checkpoint-period', 'dead-timeout', 'replication', 'chunk-size', 'replication-interval'] as const) {
          const v = a[flag];
          if (v !== undefined && !(v > 0)) return `--${flag} must be a positive number`;
        }
        for (const flag of ['checkpoint-txns', 'replication', 'chunk-size'] as const) {
          const v = a[flag];
          if (v !== undefined && !Number.isSafeInteger(v)) return `--${flag} must be a whole number`;
        }
        if (a.replication !== undefined && a.replication > MAX_REPLICATION) return `--replication must be at most ${MAX_REPLICATION}`;
        const gcDelay = a['gc-delay'];
        if (gcDelay !== undefined && !(gcDelay >= 0)) return '--gc-delay must be a number of seconds, 0 or more';
        return true;
      }),
    handler: async (args) => {
      // Loaded on demand so that file-shell commands do not pay for the server's modules.
      const { runMaster } = await import('../server/master/master-process');
      await runMaster({
        metaDirs: args['meta-dir'],
        listen: args.listen,
        checkpointTxns: args['checkpoint-txns'],
        checkpointPeriodSec: args['checkpoint-period'],
        deadTimeoutSec: args['dead-timeout'],
        replication: args.replication,
        chunkSize: args['chunk-size'],
        gcDelaySec: args['gc-delay'],
        replicationIntervalSec: args['replication-interval'],
      });
    },
  });

const withChunkserver = withServers.command({
  command: 'chunkserver',
  describe: 'run a chunkserver',
  builder: (y) => y
    .option('data-dir', { type: 'string', array: true, demandOption: true, requiresArg: true,
      describe: 'data directory (repeat for several disks)' })
    .option('listen', { type: 'string', demandOption: true, requiresArg: true, describe: 'HOST:PORT (port 0: any free port)' })
    .option('masters', { type: 'string', demandOption: true, requiresArg: true, describe: 'HOST:PORT[,HOST:PORT...] of every master' })
    .option('rack', { type: 'string', default: '', describe: 'rack label, for spreading replicas' })
    .option('heartbeat-interval', { type: 'number', describe: 'seconds between heartbeats [default: 1]' })
    .option('chunk-size', { type: 'number', describe: 'largest chunk accepted, bytes [default: 64 MiB]' })
    .option('scrub-rate', { type: 'number', describe: 'background checksum verification, MiB/s; 0 turns it off [default: 16]' })
    .option('scrub-idle', { type: 'number', describe: 'the scrubber skips chunks read or written this recently (seconds) [default: 60]' })
    .option('scrub-interval', { type: 'number', describe: 'pause between scrubber passes over all chunks (seconds) [default: 10]' })
    .option('replication-bandwidth', { type: 'number', requiresArg: true,
      describe: 're-replication copies this chunkserver receives, MB/s (10^6 bytes) in all; 0: unlimited [default: 100]' })
    .check((a) => {
      for (const flag of ['heartbeat-interval', 'chunk-size'] as const) {
        const v = a[flag];
        if (v !== undefined && !(v > 0)) return `--${flag} must be a positive number`;
      }
      for (const flag of ['scrub-rate', 'scrub-idle', 'scrub-interval'] as const) {
        const v = a[flag];
        if (v !== undefined && !(v >= 0 && Number.isFinite(v))) return `--${flag} must be a number >= 0`;
      }
      if (a['chunk-size'] !== undefined && !Number.isSafeInteger(a['chunk-size'])) return '--chunk-size must be a whole number of bytes';
      const bw = a['replication-bandwidth'];
      if (bw !== undefined && !(bw >= 0 && bw < Infinity)) return '--replication-bandwidth must be a number of MB/s, 0 or more (0: unlimited)';
      return true;
    }),
  handler: async (args) => {
    const { runChunkserver } = await import('../server/chunkserver/chunkserver-process');
    await runChunkserver({
      dataDirs: args['data-dir'],
      listen: args.listen,
      masters: args.masters.split(',').map((m) => m.trim()).filter(Boolean),
      rack: args.rack,
      heartbeatIntervalSec: args['heartbeat-interval'],
      chunkSize: args['chunk-size'],
      scrubMiBPerSec: args['scrub-rate'],
      scrubIdleSec: args['scrub-idle'],
      scrubIntervalSec: args['scrub-interval'],
      copyBytesPerSec: args['replication-bandwidth'] === undefined ? undefined : args['replication-bandwidth'] * 1e6,
    });
  },
});

const cli = withDataCommands(withFileCommands(withChunkserver))
  .command(upCommand)
  .command(mountCommand)
  .command(umountCommand)
  .command(adminCommand)
  .command(benchCommand)
  .demandCommand(1, 'name a command')
  .recommendCommands()
  .strict()
  .help()
  .alias('h', 'help')
  .version(false)
  .wrap(Math.min(110, process.stdout.columns || 80))
  .fail((message, err, y) => {
    if (err instanceof Error) throw err; // a failed operation, reported below; checks fail with a message
    y.showHelp('error');
    console.error(`\nchunkfs: ${message}`);
    process.exit(2);
  });

cli.parseAsync().catch((err: unknown) => {
  // FsError and StartupError messages are meant for users; anything else is a bug and gets its stack.
  const forUsers = err instanceof FsError || err instanceof StartupError;
  console.error(`chunkfs: ${forUsers ? err.message : err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
});
