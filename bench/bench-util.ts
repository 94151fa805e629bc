import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { MetaBenchOptions, MetaOpResult, runMetaBench } from '../client/bench-meta';
import { PACKAGE_ROOT } from '../server/common/package-root';
import { serverEnv } from '../server/common/server-runtime';

/**
 * Helpers shared by the benchmark programs. The master is started here rather than with
 * test/helpers/master-process.ts's startMaster because the benchmarks need what that helper
 * does not offer: node flags (--expose-gc), the master's log lines (`recovered txid ...`) and
 * the time from spawn to its `listening` line.
 */

const CLI_JS = path.join(PACKAGE_ROOT, 'dist', 'bin', 'chunkfs.js');
/** Generous: a restart replays a checkpoint of a million files plus the log before listening. */
const START_TIMEOUT_MS = 10 * 60_000;

/** A master or chunkserver process started by a benchmark. */
export interface BenchServer {
  address: string;
  pid: number;
  /** Milliseconds from spawn to the `listening` line. */
  startupMs: number;
  /** Its stderr so far, one entry per complete line. */
  logLines(): string[];
  kill(signal: NodeJS.Signals): void;
  /** Settles when the process has exited. */
  exited: Promise<void>;
  /** SIGTERM, SIGKILL after `graceMs`; resolves once it is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface MasterSpawnOptions {
  metaDir: string;
  nodeArgs?: string[];
  masterArgs?: string[];
}

/** Runs `chunkfs master` on 127.0.0.1:0 and waits for `listening HOST:PORT`. */
export function spawnMaster(o: MasterSpawnOptions): Promise<BenchServer> {
  return spawnServer([...(o.nodeArgs ?? []), CLI_JS, 'master', '--meta-dir', o.metaDir, '--listen', '127.0.0.1:0', ...(o.masterArgs ?? [])]);
}

/** Runs `chunkfs chunkserver` on 127.0.0.1:0 with one data directory, heartbeating to `master`. */
export function spawnChunkserver(dataDir: string, master: string, extraArgs: string[] = []): Promise<BenchServer> {
  return spawnServer([CLI_JS, 'chunkserver', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--masters', master, ...extraArgs]);
}

/** Runs node with `args` (a chunkfs server command) and waits for its `listening HOST:PORT` line. */
function spawnServer(args: string[]): Promise<BenchServer> {
  const role = args[args.indexOf(CLI_JS) + 1];
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: serverEnv(process.env) });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  const kill = (signal: NodeJS.Signals): void => { if (alive()) child.kill(signal); };
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  const logLines = (): string[] => stderr.split('\n').slice(0, -1);

  return new Promise((resolve, reject) => {
    let stdout = '';
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      kill('SIGKILL');
      reject(new Error(`${role} did not start (${why}); stderr:\n${stderr}`));
    };
    const timer = setTimeout(() => fail(`no listening line in ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    void exited.then(() => { clearTimeout(timer); fail(`exited with ${child.exitCode ?? child.signalCode}`); });
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
      const m = /^listening (\S+)$/m.exec(stdout);
      if (!m || settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({
        address: m[1],
        pid: child.pid!,
        startupMs: performance.now() - t0,
        logLines,
        kill,
        exited,
        async stop(graceMs = 5000) {
          kill('SIGTERM');
          const killer = setTimeout(() => kill('SIGKILL'), graceMs);
          await exited;
          clearTimeout(killer);
        },
      });
    });
  });
}

/** A fresh directory under the OS temp dir, for a master's metadata. */
export function makeTempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function markdownTable(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const line = (cells: ReadonlyArray<string | number>): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export function writeJson(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
}

/** Linux /proc/<pid>/status memory figures, in bytes (VmRSS now, VmHWM = peak RSS). */
export function procMemory(pid: number): { rssBytes: number; peakRssBytes: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM') };
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
export function procCpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ, 100 on every mainstream Linux
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

export const MB = 1024 * 1024;

export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export interface MeasuredPhase extends MetaOpResult {
  /** CPU the master used during the phase, in % of one core (200 = both cores of this VM). */
  masterCpuPct: number;
  /** Same for this benchmark process (the clients), which shares the machine with the master. */
  clientCpuPct: number;
}

/**
 * runMetaBench, plus how busy the master and the clients were in each phase: on a small
 * machine, whether the master or the load generator is the bottleneck matters as much as ops/s.
 * The first phase's CPU includes set-up (one mkdir per --files-per-dir files).
 */
export async function measureMetaBench(masterPid: number, options: MetaBenchOptions): Promise<MeasuredPhase[]> {
  const phases: MeasuredPhase[] = [];
  let wall = performance.now();
  let masterCpu = procCpuSeconds(masterPid);
  let clientCpu = cpuSecondsOfThisProcess();
  await runMetaBench(options, (r) => {
    const now = { wall: performance.now(), master: procCpuSeconds(masterPid), client: cpuSecondsOfThisProcess() };
    const seconds = (now.wall - wall) / 1000;
    phases.push({
      ...r,
      masterCpuPct: round((100 * (now.master - masterCpu)) / seconds, 0),
      clientCpuPct: round((100 * (now.client - clientCpu)) / seconds, 0),
    });
    ({ wall, master: masterCpu, client: clientCpu } = now);
  });
  return phases;
}

function cpuSecondsOfThisProcess(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** A command-line count; throws a message naming the flag. */
export function positive(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`--${flag} must be a positive integer, not ${text}`);
  return n;
}

/** A flag's value split on whitespace ('' gives none). */
export function words(text: string): string[] {
  return text.split(/\s+/).filter((w) => w !== '');
}
