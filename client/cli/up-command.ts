import { ChildProcess, spawn } from 'child_process';
import * as path from 'path';
import type { CommandModule } from 'yargs';
import { PACKAGE_ROOT } from '../../server/common/package-root';

interface UpArgs {
  dir: string;
  listen: string;
  chunkservers: number;
}

const CLI_JS = path.join(PACKAGE_ROOT, 'dist', 'bin', 'chunkfs.js');

/**
 * `chunkfs up`: a whole local cluster in the foreground: a master (metadata under
 * --dir/master) and --chunkservers chunkservers (data under --dir/csN), as child processes on
 * loopback so that each can be killed and restarted on its own. The mount joins when it is
 * built. Ctrl-C stops them in reverse order of start; a later `up` reuses the same data.
 */
export const upCommand: CommandModule<object, UpArgs> = {
  command: 'up',
  describe: 'run a local cluster (a master and chunkservers) until Ctrl-C',
  builder: (y) =>
    y
      .option('dir', { type: 'string', default: './.chunkfs', describe: 'where the cluster keeps its data' })
      .option('listen', { type: 'string', default: '127.0.0.1:9000', describe: 'master address HOST:PORT (port 0: any free port)' })
      .option('chunkservers', { type: 'number', default: 3, describe: 'chunkservers to start' })
      .check((a) => (Number.isSafeInteger(a.chunkservers) && a.chunkservers >= 0 ? true : '--chunkservers must be a whole number')),
  handler: async (args) => {
    const children: ChildProcess[] = [];
    let stopping = false;
    const stop = (): void => {
      stopping = true;
      for (const c of [...children].reverse()) c.kill('SIGTERM');
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);

    const ends = new Map<ChildProcess, Promise<string>>();
    const track = (c: ChildProcess) => ends.set(c, new Promise((r) => c.once('exit', (code, signal) =>
      // A server ended by our own SIGTERM (Ctrl-C during start-up) did nothing wrong.
      r(code === 0 || (stopping && signal === 'SIGTERM') ? '' : `${c.spawnargs[2]} (pid ${c.pid}) ended with ${signal ?? `status ${code}`}`))));
    try {
      const metaDir = path.resolve(args.dir, 'master');
      const master = await start(children, ['master', '--meta-dir', metaDir, '--listen', args.listen], track);
      console.log(`master listening ${master.address} (metadata in ${metaDir})`);
      for (let n = 0; n < args.chunkservers && !stopping; n++) {
        const dataDir = path.resolve(args.dir, `cs${n}`);
        const cs = await start(children, ['chunkserver', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--masters', master.address], track);
        console.log(`chunkserver listening ${cs.address} (data in ${dataDir})`);
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

/** Starts `chunkfs <args>`, resolving with its address once it prints `listening HOST:PORT`. */
function start(children: ChildProcess[], args: string[], track: (c: ChildProcess) => void): Promise<{ address: string }> {
  const child = spawn(process.execPath, [CLI_JS, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  track(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const m = /^listening (\S+)$/m.exec(out);
      if (m) resolve({ address: m[1] });
    });
    child.once('exit', (code) => reject(new Error(`chunkfs ${args[0]} exited with status ${code} before listening`)));
  });
}
