import { ChildProcess, execFile, spawn } from 'child_process';
import * as path from 'path';
import { PACKAGE_ROOT } from '../../server/common/package-root';
import { serverEnv } from '../../server/common/server-runtime';

/** A server (master, chunkserver, mount) started as a real process. */
export interface ServerProcess {
  /** HOST:PORT from its `listening` line (a mount: its mount point). */
  address: string;
  pid: number;
  kill(signal?: NodeJS.Signals): void;
  /** Settles with the exit code (null when a signal ended it). */
  stopped: Promise<number | null>;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`; resolves once it is gone. */
  stop(graceMs?: number): Promise<number | null>;
  /** What it has written to stderr so far (its log). */
  stderr(): string;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const CLI_JS = path.join(PACKAGE_ROOT, 'dist', 'bin', 'chunkfs.js');
const CLI_BIN = path.join(PACKAGE_ROOT, 'bin', 'chunkfs');
const START_TIMEOUT_MS = 20_000;

/** Kept for the tests written against masters. */
export type MasterProcess = ServerProcess;

/** `chunkfs master` with the given metadata directories, on a free port unless `listen` says. */
export function startMaster(metaDirs: string[], extraArgs: string[] = [], listen = '127.0.0.1:0', env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  return startServer(['master', ...metaDirs.flatMap((d) => ['--meta-dir', d]), '--listen', listen, ...extraArgs], undefined, [], env);
}

/**
 * `chunkfs chunkserver` on `listen` (any free port by default) with the given data directories,
 * heartbeating to `masters`; run through `wrapper` (a command that ends by running the arguments
 * after it) if given.
 */
export function startChunkserver(dataDirs: string[], masters: string[], extraArgs: string[] = [], wrapper: string[] = [], listen = '127.0.0.1:0'): Promise<ServerProcess> {
  return startServer(['chunkserver', ...dataDirs.flatMap((d) => ['--data-dir', d]), '--listen', listen,
    '--masters', masters.join(','), ...extraArgs], undefined, wrapper);
}

/**
 * `chunkfs mount MOUNTPOINT --masters MASTER`, ready once it prints `mounted MOUNTPOINT`;
 * `env`: added to this process's environment (CHUNKFS_LOG=debug logs every operation).
 */
export function startMount(mountpoint: string, master: string, extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  return startServer(['mount', mountpoint, '--masters', master, ...extraArgs], /^mounted (.+)$/m, [], env);
}

/**
 * Starts `chunkfs <args>` and waits for its ready line (`listening HOST:PORT` by default). Its
 * stderr is collected for the failure message.
 */
function startServer(cliArgs: string[], ready = /^listening (\S+)$/m, wrapper: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const [command, ...args] = [...wrapper, process.execPath, CLI_JS, ...cliArgs];
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: serverEnv({ ...process.env, ...env }) });
  const stopped = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stdout = '';
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  return new Promise((resolve, reject) => {
    let started = false;
    const fail = (why: string): void => {
      if (started) return;
      child.kill('SIGKILL');
      reject(new Error(`chunkfs ${cliArgs[0]} did not start (${why}); stderr:\n${stderr}`));
    };
    const timer = setTimeout(() => fail(`no ready line in ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    void stopped.then((code) => { clearTimeout(timer); fail(`exited with ${code}`); });
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
      const m = ready.exec(stdout);
      if (!m || started) return;
      started = true;
      clearTimeout(timer);
      resolve(handle(child, m[1], stopped, () => stderr));
    });
  });
}

function handle(child: ChildProcess, address: string, stopped: Promise<number | null>, stderr: () => string): ServerProcess {
  const kill = (signal: NodeJS.Signals = 'SIGTERM'): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  return {
    address,
    pid: child.pid!,
    kill,
    stopped,
    stderr,
    async stop(graceMs = 5000) {
      kill('SIGTERM');
      const timer = setTimeout(() => kill('SIGKILL'), graceMs);
      try {
        return await stopped;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Runs the `bin/chunkfs` executable; never rejects on a non-zero exit. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(CLI_BIN, args, { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}
