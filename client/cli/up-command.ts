import { ChildProcess, spawn } from 'child_process';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { CommandModule } from 'yargs';
import { PACKAGE_ROOT } from '../../server/common/package-root';

interface UpArgs {
  dir: string;
  listen: string;
  chunkservers: number;
  replication: number;
  mount: string;
}

const CLI_JS = path.join(PACKAGE_ROOT, 'dist', 'bin', 'chunkfs.js');
/** How long a server may take to stop on SIGTERM before it is killed. */
const STOP_GRACE_MS = 15_000;

/**
 * `chunkfs up`: a whole local cluster in the foreground: a master (metadata under
 * --dir/master), --chunkservers chunkservers (data under --dir/csN) and a FUSE mount on
 * --mount, as child processes on loopback so that each can be killed and restarted on its own.
 * Ctrl-C stops them in reverse order of start (the mount first, so it unmounts cleanly); a
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
    const children: ChildProcess[] = [];
    let stopping = false;
    // One at a time, newest first: the mount flushes open files while the servers still run.
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      void (async () => {
        for (const c of [...children].reverse()) {
          if (c.exitCode !== null || c.signalCode !== null) continue;
          const gone = new Promise((r) => c.once('exit', r));
          c.kill('SIGTERM');
          const force = setTimeout(() => c.kill('SIGKILL'), STOP_GRACE_MS);
          await gone;
          clearTimeout(force);
        }
      })();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);

    const ends = new Map<ChildProcess, Promise<string>>();
    const track = (c: ChildProcess) => ends.set(c, new Promise((r) => c.once('exit', (code, signal) =>
      // A server ended by our own SIGTERM (Ctrl-C during start-up) did nothing wrong.
      r(code === 0 || (stopping && signal === 'SIGTERM') ? '' : `${c.spawnargs[2]} (pid ${c.pid}) ended with ${signal ?? `status ${code}`}`))));
    try {
      const metaDir = path.resolve(args.dir, 'master');
      const master = await start(children, ['master', '--meta-dir', metaDir, '--listen', args.listen,
        '--replication', String(args.replication)], track);
      console.log(`master listening ${master.address} (metadata in ${metaDir})`);
      for (let n = 0; n < args.chunkservers && !stopping; n++) {
        const dataDir = path.resolve(args.dir, `cs${n}`);
        const cs = await start(children, ['chunkserver', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--masters', master.address], track);
        console.log(`chunkserver listening ${cs.address} (data in ${dataDir})`);
      }
      if (args.mount && !stopping) {
        const mountpoint = path.resolve(args.mount);
        await fs.mkdir(mountpoint, { recursive: true });
        await start(children, ['mount', mountpoint, '--masters', master.address], track, /^mounted (.+)$/m);
        console.log(`mounted on ${mountpoint}`);
      }
      if (!stopping) {
        console.log(`try: chunkfs put /etc/hosts /hosts --master ${master.address}   (or export CHUNKFS_MASTER=${master.address})`);
        console.log('cluster up; Ctrl-C stops it');
      }
    } catch (err) {
      if (!stopping) {
        console.error(`chunkfs up: ${(err as Error).message}; stopping the cluster`);
        stop();
      }
    }
    const failures = (await Promise.all(ends.values())).filter(Boolean);
    for (const f of failures) console.error(`chunkfs up: ${f}`);
    process.exitCode = failures.length ? 1 : 0;
  },
};

/** Starts `chunkfs <args>`, resolving with its address once it prints its ready line. */
function start(
  children: ChildProcess[],
  args: string[],
  track: (c: ChildProcess) => void,
  ready = /^listening (\S+)$/m,
): Promise<{ address: string }> {
  const child = spawn(process.execPath, [CLI_JS, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  track(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const m = ready.exec(out);
      if (m) resolve({ address: m[1] });
    });
    child.once('exit', (code) => reject(new Error(`chunkfs ${args[0]} exited with status ${code} before it was ready`)));
  });
}
