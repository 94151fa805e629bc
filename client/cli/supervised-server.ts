import { performance } from 'perf_hooks';
import { ChildProcess, spawn } from 'child_process';
import * as path from 'path';
import { PACKAGE_ROOT } from '../../server/common/package-root';
import { serverEnv } from '../../server/common/server-runtime';
import { STOP_WITH_PARENT_ENV } from '../../server/common/shutdown';

const CLI_JS = path.join(PACKAGE_ROOT, 'dist', 'bin', 'chunkfs.js');
/** How long a server may take to stop on SIGTERM before it is killed. */
const STOP_GRACE_MS = 15_000;
/** Pause before the first start again after a death; doubled after each start that fails... */
const RESTART_DELAY_MS = 1000;
/**
 * ...and after each kill from outside soon after a start past the first few, up to this (ms):
 * well inside the 30 s a mount's calls wait for the master (a longer pause under repeated kills
 * failed them with EIO).
 */
const MAX_RESTART_DELAY_MS = 4_000;
/** Kills from outside in a row restarted after the first pause before the pauses grow. */
const KILLS_BEFORE_BACKOFF = 3;
/** Starts in a row that fail, after which the server is given up. */
const MAX_FAILED_STARTS = 3;
/** A start fails when the server ends before it is ready, is not ready within this time (ms)... */
const START_TIMEOUT_MS = 120_000;
/** ...or dies within this time of being ready (a crash loop backs off and ends too). */
const STABLE_MS = 10_000;

/**
 * A server killed by a signal (an operator, a fault-injection run; the OOM killer's SIGKILL
 * looks the same) or asked to stop (it exits 0 on SIGTERM and SIGINT) did not fail to start
 * when that came soon after (or during) a start: it is started again however often that
 * happens, after pauses that grow once it keeps happening. A crash of its own (an exit status
 * other than 0, SIGSEGV, SIGABRT) is a failed start.
 */
function endedFromOutside(code: number | null, signal: NodeJS.Signals | null): boolean {
  return code === 0 || signal === 'SIGKILL' || signal === 'SIGTERM' || signal === 'SIGINT' || signal === 'SIGHUP';
}

/** A start that did not come to be ready, and whether it was ended from outside (see endedFromOutside). */
class StartFailure extends Error {
  constructor(message: string, readonly fromOutside: boolean) {
    super(message);
  }
}

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
 * again that fails (see START_TIMEOUT_MS, STABLE_MS, endedFromOutside) is retried after a
 * growing pause; after MAX_FAILED_STARTS in a row the server is given up (`gaveUp`). The first
 * start is not retried: bad options or a busy port are the operator's to fix.
 *
 * The server runs in a process group of its own (a terminal's Ctrl-C reaches up alone, which
 * stops the servers in order) with a pipe on its stdin that up never writes to: its end tells
 * the server that up is gone, however up ended (shutdown.ts).
 */
export class SupervisedServer {
  private child: ChildProcess | null = null;
  private stopping = false;
  private failedStarts = 0;
  /** Kills from outside in a row, each soon after a start (see endedFromOutside). */
  private killedSoon = 0;
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

  /** From now on the server is not started again (also not by a restart already pending). */
  noMoreRestarts(): void {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
  }

  /** Stops it (SIGTERM, then SIGKILL after a grace time) and restarts it no more. */
  async stop(): Promise<void> {
    this.noMoreRestarts();
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

  /** Spawns the server; resolves with what its ready line matched, rejects if the start fails. */
  private spawnOnce(): Promise<string> {
    const child = spawn(process.execPath, [CLI_JS, ...this.args()], {
      stdio: ['pipe', 'pipe', 'inherit'],
      detached: true,
      env: serverEnv({ ...process.env, [STOP_WITH_PARENT_ENV]: '1' }),
    });
    this.child = child;
    return new Promise((resolve, reject) => {
      let out = '';
      let readyAt = 0;
      let timedOut = false;
      const tooSlow = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, START_TIMEOUT_MS);
      child.stdout!.setEncoding('utf8').on('data', (s: string) => {
        if (readyAt) return;
        out += s;
        const m = this.readyLine.exec(out);
        if (m) {
          readyAt = performance.now();
          clearTimeout(tooSlow);
          resolve(m[1] ?? '');
        }
      });
      child.once('error', (err) => {
        clearTimeout(tooSlow);
        if (!readyAt) reject(new StartFailure(`chunkfs ${this.name} could not be started: ${err.message}`, false));
      });
      child.once('exit', (code, signal) => {
        clearTimeout(tooSlow);
        const how = signal ?? `status ${code}`;
        if (!readyAt) {
          reject(new StartFailure(`chunkfs ${this.name} exited with ${how} before it was ready`, !timedOut && endedFromOutside(code, signal)));
          return;
        }
        if (this.stopping) return;
        this.events.say(`chunkfs up: ${this.name} (pid ${child.pid}) ended with ${how}; starting it again`);
        const ranMs = Math.round(performance.now() - readyAt);
        if (ranMs >= STABLE_MS) this.restartLater();
        else if (endedFromOutside(code, signal)) this.killedSoonAfterStart();
        else this.failedStart(`${this.name} ended ${ranMs} ms after it was ready`);
      });
    });
  }

  private restartLater(): void {
    const delay = Math.min(MAX_RESTART_DELAY_MS, RESTART_DELAY_MS * 2 ** (this.failedStarts + Math.max(0, this.killedSoon - KILLS_BEFORE_BACKOFF)));
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.stopping) return;
      this.spawnOnce().then(
        (ready) => {
          if (this.stopping) return;
          this.events.say(`chunkfs up: ${this.name} running again (pid ${this.child?.pid}): ${ready}`);
          // Counted good once it has run STABLE_MS (its exit handler counts an early death).
          const started = this.child;
          setTimeout(() => {
            if (this.child === started && started?.exitCode === null && started.signalCode === null) this.failedStarts = this.killedSoon = 0;
          }, STABLE_MS).unref();
        },
        (err: StartFailure) => {
          if (this.stopping) return;
          if (err.fromOutside) this.killedSoonAfterStart(err.message);
          else this.failedStart(err.message);
        },
      );
    }, delay);
  }

  /** `why` is said when nothing has said it yet (a start ended before it was ready). */
  private killedSoonAfterStart(why?: string): void {
    this.killedSoon++;
    if (why) this.events.say(`chunkfs up: ${why} (ended from outside); starting it again`);
    this.restartLater();
  }

  private failedStart(why: string): void {
    this.failedStarts++;
    if (this.failedStarts >= MAX_FAILED_STARTS) {
      this.noMoreRestarts();
      this.events.gaveUp(`${why}; gave up after ${this.failedStarts} failed starts in a row`);
    } else {
      this.events.say(`chunkfs up: ${why}; trying again`);
      this.restartLater();
    }
  }
}
