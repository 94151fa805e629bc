import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ServerProcess, startMount } from './server-process';
import type { TestCluster } from './test-cluster';

export interface ShellResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * A real FUSE mount of a test cluster, served by its own `chunkfs mount` process (so this
 * process may drive it with any tool, synchronously or not). stop() ends the process and
 * always detaches the mount point with `fusermount -uz`, also after a failure.
 */
export class TestMount {
  private constructor(
    readonly dir: string,
    private process: ServerProcess,
    private readonly master: string,
    private readonly extraArgs: string[],
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** Mounts `cluster` on `<cluster root>/<name>` (created); `env` for the mount process. */
  static async start(cluster: TestCluster, name = 'mnt', extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<TestMount> {
    const dir = path.join(cluster.root, name);
    fs.mkdirSync(dir, { recursive: true });
    const p = await startMount(dir, cluster.master.address, extraArgs, env);
    return new TestMount(dir, p, cluster.master.address, extraArgs, env);
  }

  /** The mount process's log so far. */
  log(): string {
    return this.process.stderr();
  }

  /** The path of `rel` inside the mount. */
  at(rel: string): string {
    return path.join(this.dir, rel);
  }

  /** Runs a bash command line with the mount as working directory; never rejects on failure. */
  sh(command: string, cwd = this.dir): Promise<ShellResult> {
    return sh(command, cwd);
  }

  /** Like sh, but a non-zero exit fails with the command's stderr. */
  async ok(command: string, cwd = this.dir): Promise<string> {
    const r = await sh(command, cwd);
    if (r.code !== 0) throw new Error(`\`${command}\` exited ${r.code}:\n${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** Settles with the mount process's exit code once it has ended. */
  get exited(): Promise<number | null> {
    return this.process.stopped;
  }

  /** SIGKILLs the mount process (a crash), leaving a dead mount point behind. */
  kill(): Promise<number | null> {
    this.process.kill('SIGKILL');
    return this.process.stopped;
  }

  /** Mounts again on the same directory (which may hold a dead mount). */
  async restart(): Promise<void> {
    this.process = await startMount(this.dir, this.master, this.extraArgs, this.env);
  }

  async stop(): Promise<void> {
    try {
      await this.process.stop(10_000);
    } finally {
      await sh(`fusermount -uz ${JSON.stringify(this.dir)} 2>/dev/null`, '/');
    }
  }
}

export function sh(command: string, cwd: string): Promise<ShellResult> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', command], { cwd, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
