import { ChildProcess, spawn } from 'child_process';
import * as path from 'path';
import { PACKAGE_ROOT } from '../../server/common/package-root';
import { STOP_WITH_PARENT_ENV } from '../../server/common/shutdown';

const CLI_JS = path.join(PACKAGE_ROOT, 'dist', 'bin', 'chunkfs.js');
/** How long a server may take to stop on SIGTERM before it is killed. */
const STOP_GRACE_MS = 15_000;
/** Pause before the first start again after a death; doubled after each start that fails. */
const RESTART_DELAY_MS = 1000;
/** Starts in a row that end before the server is ready, after which it is given up. */
const MAX_FAILED_STARTS = 3;

export interface SupervisorEvents {
  /** A line for the operator (stderr). */
  say(line: string): void;
  /** The server cannot be started again: the cluster has to stop. */
  gaveUp(why: string): void;
}

/**
 * One server of `chunkfs up` (`chunkfs <args>` as a child process), started again when it dies
 * while the cluster runs, as GFS's monitoring infrastructure restarts a failed master: a master
 * recovers from its log on the same address, and the others find it there again; a chunkserver
 * re-registers with its chunks; a mount cleans its stale mount point and mounts again. A start
 * that ends before the server is ready is retried after a growing pause; after
 * MAX_FAILED_STARTS in a row the server is given up (`gaveUp`). The first start is not retried:
 * bad options or a busy port are the operator's to fix.
 */
export class SupervisedServer {
  private child: ChildProcess | null = null;
  private stopping = false;
  private failedStarts = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  /** What the ready line matched (e.g. the address), once the first start succeeded. */
  ready = '';

  constructor(
    /** e.g. "master", "chunkserver 2" */
    readonly name: string,
    /** The command line; asked again before each restart (the master keeps its first address). */
    private readonly args: () => string[],
    /** The stdout line that says it is ready; its first group is kept in `ready`. */
    private readonly readyLine: RegExp,
    private readonly events: SupervisorEvents,
  ) {}

  /** The first start: resolves once the server is ready, rejects if it ends before. */
  async start(): Promise<void> {
    this.ready = await this.spawnOnce();
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Stops it (SIGTERM, then SIGKILL after a grace time) and restarts it no more. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const force = setTimeout(() => c.kill('SIGKILL'), STOP_GRACE_MS);
    await gone;
    clearTimeout(force);
  }

  /** '' when the last process ended cleanly (or runs), else how it ended. */
  get endedBadly(): string {
    const c = this.child;
    if (!c || c.exitCode === 0 || (c.exitCode === null && c.signalCode === null)) return '';
    // One ended by our own SIGTERM did nothing wrong.
    if (this.stopping && c.signalCode === 'SIGTERM') return '';
    return `${this.name} (pid ${c.pid}) ended with ${c.signalCode ?? `status ${c.exitCode}`}`;
  }

  /** Resolves once the process has ended (at once if none runs). */
  exited(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
    return new Promise((r) => c.once('exit', () => r()));
  }

  private spawnOnce(): Promise<string> {
    // stdin: a pipe up never writes to, whose end tells the server that up is gone.
    const child = spawn(process.execPath, [CLI_JS, ...this.args()], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, [STOP_WITH_PARENT_ENV]: '1' },
    });
    this.child = child;
    return new Promise((resolve, reject) => {
      let out = '';
      let isReady = false;
      child.stdout!.setEncoding('utf8').on('data', (s: string) => {
        if (isReady) return;
        out += s;
        const m = this.readyLine.exec(out);
        if (m) {
          isReady = true;
          resolve(m[1] ?? '');
        }
      });
      child.once('exit', (code, signal) => {
        const how = signal ?? `status ${code}`;
        if (!isReady) reject(new Error(`chunkfs ${this.name} exited with ${how} before it was ready`));
        else if (!this.stopping) {
          this.events.say(`chunkfs up: ${this.name} (pid ${child.pid}) ended with ${how}; starting it again`);
          this.restartLater();
        }
      });
    });
  }

  private restartLater(): void {
    const delay = RESTART_DELAY_MS * 2 ** this.failedStarts;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.stopping) return;
      this.spawnOnce().then(
        () => {
          this.failedStarts = 0;
          this.events.say(`chunkfs up: ${this.name} running again (pid ${this.child?.pid})`);
        },
        (err: Error) => {
          if (this.stopping) return;
          this.failedStarts++;
          if (this.failedStarts >= MAX_FAILED_STARTS) {
            this.events.gaveUp(`${err.message}; gave up after ${this.failedStarts} starts in a row`);
          } else {
            this.events.say(`chunkfs up: ${err.message}; trying again`);
            this.restartLater();
          }
        },
      );
    }, delay);
  }
}
