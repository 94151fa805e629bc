import { promises as fs } from 'fs';
import * as path from 'path';
import type { CommandModule } from 'yargs';
import { cleanStaleMount } from '../../mount/stale-mount';
import { SupervisedServer, type SupervisorEvents } from './supervised-server';

interface UpArgs {
  dir: string;
  listen: string;
  chunkservers: number;
  replication: number;
  mount: string;
}

/**
 * `chunkfs up`: a whole local cluster in the foreground: a master (metadata under
 * --dir/master), --chunkservers chunkservers (data under --dir/csN) and a FUSE mount on
 * --mount, as child processes on loopback, each started again when it dies (see
 * supervised-server.ts). Ctrl-C stops them in reverse order of start (the mount first, so it unmounts cleanly); a
 * later `up` reuses the same data.
 */
export const upCommand: CommandModule<object, UpArgs> = {
  command: 'up',
  describe: 'run a local cluster (a master, chunkservers and a mount) until Ctrl-C',
  builder: (y) =>
    y
      .option('dir', { type: 'string', default: './.chunkfs', describe: 'where the cluster keeps its data' })
      .option('listen', { type: 'string', default: '127.0.0.1:9000', describe: 'master address HOST:PORT (port 0: any free port)' })
      .option('chunkservers', { type: 'number', default: 3, describe: 'chunkservers to start' })
      .option('replication', { type: 'number', default: 3, describe: 'default replication factor of new files' })
      .option('mount', { type: 'string', default: './mnt', describe: 'where to mount the cluster (empty: no mount)' })
      .check((a) => {
        if (!Number.isSafeInteger(a.chunkservers) || a.chunkservers < 0) return '--chunkservers must be a whole number';
        if (!Number.isSafeInteger(a.replication) || a.replication < 1) return '--replication must be a whole number >= 1';
        return true;
      }),
  handler: async (args) => {
    const servers: SupervisedServer[] = [];
    let stopping = false;
    let gaveUp = '';
    let stopped: () => void = () => undefined;
    const allStopped = new Promise<void>((r) => (stopped = r));
    // One at a time, newest first: the mount flushes open files while the servers still run.
    // None is started again meanwhile, nor started at all (start() refuses once stopping).
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      servers.forEach((s) => s.noMoreRestarts());
      void (async () => {
        for (const s of [...servers].reverse()) await s.stop();
        stopped();
      })();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    process.once('SIGHUP', stop); // its terminal closed: the same orderly stop
    const events: SupervisorEvents = {
      say: (line) => console.error(line),
      gaveUp: (why) => {
        gaveUp ||= why;
        console.error(`chunkfs up: ${why}; stopping the cluster`);
        stop();
      },
    };
    const start = async (name: string, cmd: () => string[], ready?: RegExp): Promise<SupervisedServer> => {
      if (stopping) throw new Error('stopping');
      const server = new SupervisedServer(name, cmd, ready ?? /^listening (\S+)$/m, events);
      servers.push(server);
      await server.start();
      return server;
    };

    let startFailed = false;
    let mountpoint = '';
    try {
      const metaDir = path.resolve(args.dir, 'master');
      let masterAddress = args.listen;
      // Started again on the address it got the first time: the others look for it there.
      masterAddress = (await start('master', () => ['master', '--meta-dir', metaDir, '--listen', masterAddress,
        '--replication', String(args.replication)])).ready;
      console.log(`master listening ${masterAddress} (metadata in ${metaDir})`);
      for (let n = 0; n < args.chunkservers && !stopping; n++) {
        const dataDir = path.resolve(args.dir, `cs${n}`);
        const cs = await start(`chunkserver ${n}`, () => ['chunkserver', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--masters', masterAddress]);
        console.log(`chunkserver listening ${cs.ready} (data in ${dataDir})`);
      }
      if (args.mount && !stopping) {
        mountpoint = path.resolve(args.mount);
        // A stale mount there (its process died) fails this with ENOTCONN; the mount cleans it.
        await fs.mkdir(mountpoint, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOTCONN') throw err;
        });
        await start('mount', () => ['mount', mountpoint, '--masters', masterAddress], /^mounted (.+)$/m);
        console.log(`mounted on ${mountpoint}`);
      }
      if (!stopping) {
        console.log(`try: chunkfs put /etc/hosts /hosts --master ${masterAddress}   (or export CHUNKFS_MASTER=${masterAddress})`);
        console.log('cluster up (a server that dies is started again); Ctrl-C stops it');
      }
    } catch (err) {
      if (!stopping) {
        startFailed = true;
        console.error(`chunkfs up: ${(err as Error).message}; stopping the cluster`);
        stop();
      }
    }
    // Until Ctrl-C (or a server given up): meanwhile the servers' restarts keep the cluster going.
    await allStopped;
    await Promise.all(servers.map((s) => s.exited()));
    // A mount killed (its stop took too long, say: flushing to a master that is gone) leaves its
    // mount point dead ("Transport endpoint is not connected") for whatever uses it next.
    let leftMounted = false;
    try {
      if (mountpoint && (await cleanStaleMount(mountpoint))) console.error(`chunkfs up: unmounted ${mountpoint}, left by the mount's end`);
    } catch (err) {
      leftMounted = true;
      console.error(`chunkfs up: ${mountpoint} is left dead: ${(err as Error).message}`);
    }
    const failures = servers.map((s) => s.endedBadly).filter(Boolean);
    for (const f of failures) console.error(`chunkfs up: ${f}`);
    process.exitCode = failures.length || gaveUp || startFailed || leftMounted ? 1 : 0;
  },
};
