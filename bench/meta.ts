import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import { META_OPS, MetaOp } from '../client/bench-meta';
import {
  BenchServer, makeTempDir, markdownTable, measureMetaBench, MeasuredPhase, median, positive, removeDir, spawnMaster, words, writeJson,
} from './bench-util';

/**
 * Metadata throughput of a fresh local master: create, stat, rename and delete with 1, 8 and
 * 32 clients, the median of several rounds; then a --channels sweep at 32 clients to choose
 * the CLI's default. Usage: node dist/bench/meta.js [--files N] [--rounds R] [--out FILE].
 */

interface Args {
  files: number;
  rounds: number;
  clients: number[];
  /** Channels for the main runs: min(clients, this), as the CLI's default. */
  maxChannels: number;
  sweepChannels: number[];
  sweepClients: number;
  filesPerDir: number;
  /** Extra node flags for the master, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
  masterNodeArgs: string[];
  out: string;
}

/** Per op and client count, the medians over the rounds. */
interface MedianRow {
  op: MetaOp;
  clients: number;
  channels: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  masterCpuPct: number;
  clientCpuPct: number;
  rounds: MeasuredPhase[];
}

interface SweepRun {
  clients: number;
  channels: number;
  phases: MeasuredPhase[];
}

/** The targets, at 32 clients. */
const TARGET_OPS_PER_SEC: Partial<Record<MetaOp, number>> = { create: 10_000, stat: 30_000 };

async function main(): Promise<void> {
  const args = parseFlags();
  const metaRoot = makeTempDir('chunkfs-bench-meta-');
  let master: BenchServer | null = null;
  try {
    master = await spawnMaster({ metaDir: path.join(metaRoot, 'meta'), nodeArgs: args.masterNodeArgs });
    const run = (clients: number, channels: number, dir: string): Promise<MeasuredPhase[]> =>
      measureMetaBench(master!.pid, {
        master: master!.address, ops: [...META_OPS], files: args.files, clients, channels, dir,
        filesPerDir: args.filesPerDir, keep: false,
      });

    const byClients = new Map<number, MeasuredPhase[][]>();
    for (const clients of args.clients) {
      const channels = Math.min(clients, args.maxChannels);
      const rounds: MeasuredPhase[][] = [];
      for (let round = 1; round <= args.rounds; round++) {
        rounds.push(await run(clients, channels, `/meta-c${clients}-r${round}`));
        progress(`clients ${clients} channels ${channels} round ${round}`, rounds[rounds.length - 1]);
      }
      byClients.set(clients, rounds);
    }
    const sweep: SweepRun[] = [];
    for (const channels of args.sweepChannels) {
      const phases = await run(args.sweepClients, channels, `/meta-sweep-ch${channels}`);
      progress(`sweep clients ${args.sweepClients} channels ${channels}`, phases);
      sweep.push({ clients: args.sweepClients, channels, phases });
    }

    const rows = medianRows(byClients, args.maxChannels);
    console.log(`## Metadata throughput: ${args.files} files, median of ${args.rounds} rounds\n`);
    console.log(markdownTable(
      ['op', 'clients', 'channels', 'ops/s', 'p50 ms', 'p99 ms', 'ops/s min..max', 'master CPU %', 'client CPU %', 'target'],
      rows.map((r) => {
        const opsPerSec = r.rounds.map((p) => p.opsPerSec);
        return [r.op, r.clients, r.channels, r.opsPerSec, r.p50Ms, r.p99Ms, `${Math.min(...opsPerSec)}..${Math.max(...opsPerSec)}`,
          r.masterCpuPct, r.clientCpuPct, targetVerdict(r)];
      }),
    ));
    console.log(`\n## Channel sweep: ${args.sweepClients} clients, 1 round each\n`);
    console.log(markdownTable(
      ['op', 'channels', 'ops/s', 'p50 ms', 'p99 ms', 'master CPU %', 'client CPU %'],
      META_OPS.flatMap((op) => sweep.map((s) => {
        const p = s.phases.find((x) => x.op === op)!;
        return [op, s.channels, p.opsPerSec, p.p50Ms, p.p99Ms, p.masterCpuPct, p.clientCpuPct];
      })),
    ));
    writeJson(args.out, {
      benchmark: 'meta', date: new Date().toISOString(), cpus: os.cpus().length, node: process.version,
      files: args.files, rounds: args.rounds, filesPerDir: args.filesPerDir,
      results: rows, channelSweep: sweep,
    });
    console.log(`\nJSON: ${args.out}`);
  } finally {
    await master?.stop();
    removeDir(metaRoot);
  }
}

function medianRows(byClients: Map<number, MeasuredPhase[][]>, maxChannels: number): MedianRow[] {
  return META_OPS.flatMap((op) => [...byClients].map(([clients, rounds]): MedianRow => {
    const phases = rounds.map((r) => r.find((p) => p.op === op)!);
    const med = (pick: (p: MeasuredPhase) => number): number => median(phases.map(pick));
    return {
      op, clients, channels: Math.min(clients, maxChannels),
      opsPerSec: med((p) => p.opsPerSec), p50Ms: med((p) => p.p50Ms), p99Ms: med((p) => p.p99Ms),
      masterCpuPct: med((p) => p.masterCpuPct), clientCpuPct: med((p) => p.clientCpuPct), rounds: phases,
    };
  }));
}

function targetVerdict(r: MedianRow): string {
  const target = TARGET_OPS_PER_SEC[r.op];
  if (target === undefined || r.clients !== 32) return '';
  return `>= ${target}: ${r.opsPerSec >= target ? 'met' : 'MISSED'}`;
}

/** Each run's numbers on stderr as they come, so that a long benchmark shows it is alive. */
function progress(label: string, phases: MeasuredPhase[]): void {
  const parts = phases.map((p) => `${p.op} ${p.opsPerSec}/s p99 ${p.p99Ms} ms`);
  console.error(`[meta] ${label}: ${parts.join(', ')}`);
}

function parseFlags(): Args {
  const { values } = parseArgs({
    options: {
      files: { type: 'string', default: '20000' },
      rounds: { type: 'string', default: '3' },
      clients: { type: 'string', default: '1,8,32' },
      'max-channels': { type: 'string', default: '4' },
      'sweep-channels': { type: 'string', default: '1,2,4' },
      'sweep-clients': { type: 'string', default: '32' },
      'files-per-dir': { type: 'string', default: '1000' },
      'master-node-args': { type: 'string', default: '' },
      out: { type: 'string', default: '/tmp/chunkfs-bench/meta.json' },
    },
    strict: true,
  });
  return {
    files: positive('files', values.files!),
    rounds: positive('rounds', values.rounds!),
    clients: positiveList('clients', values.clients!),
    maxChannels: positive('max-channels', values['max-channels']!),
    sweepChannels: positiveList('sweep-channels', values['sweep-channels']!),
    sweepClients: positive('sweep-clients', values['sweep-clients']!),
    filesPerDir: positive('files-per-dir', values['files-per-dir']!),
    masterNodeArgs: words(values['master-node-args']!),
    out: values.out!,
  };
}

function positiveList(flag: string, text: string): number[] {
  return text.split(',').map((t) => positive(flag, t));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
