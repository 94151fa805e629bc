import { spawn } from 'child_process';
import * as path from 'path';
import type { CommandModule } from 'yargs';
import { PACKAGE_ROOT } from '../../server/common/package-root';

interface UpArgs {
  dir: string;
  listen: string;
}

const CLI_JS = path.join(PACKAGE_ROOT, 'dist', 'bin', 'chunkfs.js');

/**
 * `chunkfs up`: a whole local cluster in the foreground. For now that is the master (its
 * metadata under --dir/master); chunkservers and the mount join it as they are built. The
 * servers run as child processes so that each can be killed and restarted on its own; Ctrl-C
 * stops them in reverse order of start, and a later `up` reuses the same data.
 */
export const upCommand: CommandModule<object, UpArgs> = {
  command: 'up',
  describe: 'run a local cluster (a master, for now) until Ctrl-C',
  builder: (y) =>
    y
      .option('dir', { type: 'string', default: './.chunkfs', describe: 'where the cluster keeps its data' })
      .option('listen', { type: 'string', default: '127.0.0.1:9000', describe: 'master address HOST:PORT (port 0: any free port)' }),
  handler: async (args) => {
    const metaDir = path.resolve(args.dir, 'master');
    const master = spawn(process.execPath, [CLI_JS, 'master', '--meta-dir', metaDir, '--listen', args.listen], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<number>((resolve) => master.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
    let out = '';
    master.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const m = /^listening (\S+)$/m.exec(out);
      if (!m) return;
      out = '';
      console.log(`master listening ${m[1]} (metadata in ${metaDir})`);
      console.log(`try: chunkfs mkdir /hello --master ${m[1]}   (or export CHUNKFS_MASTER=${m[1]})`);
      console.log('Ctrl-C stops the cluster');
    });
    const stop = (): void => {
      master.kill('SIGTERM');
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const code = await exited;
    if (code !== 0) console.error(`chunkfs up: the master exited with status ${code}`);
    process.exitCode = code;
  },
};
