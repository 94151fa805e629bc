import * as os from 'os';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { parseArgs } from 'util';
import { MasterClient } from '../client/master-client';
import type { CheckpointResult } from '../server/master/master-state';
import {
  BenchServer, makeTempDir, markdownTable, MB, measureMetaBench, MeasuredPhase, positive, procMemory, removeDir, round,
  spawnMaster, words, writeJson,
} from './bench-util';

/**
 * The master at scale (default 1,000,000 files): heap per file, create latency with and without
 * a checkpoint being written, and recovery time from a checkpoint plus ~100,000 logged
 * operations after a SIGKILL. Usage: node dist/bench/master-scale.js [--files N] [--out FILE].
 */

interface Args {
  files: number;
  latencyFiles: number;
  loggedOps: number;
  clients: number;
  channels: number;
  filesPerDir: number;
  /** Extra node flags for the masters, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
  masterNodeArgs: string[];
  out: string;
}

/** --expose-gc so that status(true) measures live data; no automatic checkpoints, only ours. */
const NODE_ARGS = ['--expose-gc'];
const MASTER_ARGS = ['--checkpoint-txns', '100000000', '--checkpoint-period', '100000'];
/** Admin calls: a checkpoint of a million files takes far longer than the default deadline. */
const ADMIN_DEADLINE_MS = 10 * 60_000;

async function main(): Promise<void> {
  const a = parseFlags();
  const root = makeTempDir('chunkfs-bench-scale-');
  const metaDir = path.join(root, 'meta');
  const masters: BenchServer[] = [];
  const admins: MasterClient[] = [];
  const start = async (): Promise<{ master: BenchServer; admin: MasterClient }> => {
    const master = await spawnMaster({ metaDir, nodeArgs: [...NODE_ARGS, ...a.masterNodeArgs], masterArgs: MASTER_ARGS });
    masters.push(master);
    const admin = new MasterClient(master.address, { deadlineMs: ADMIN_DEADLINE_MS });
    admins.push(admin);
    return { master, admin };
  };
  const creates = (master: BenchServer, files: number, dir: string): Promise<MeasuredPhase> =>
    measureMetaBench(master.pid, {
      master: master.address, ops: ['create'], files, clients: a.clients, channels: a.channels, dir,
      filesPerDir: a.filesPerDir, keep: true,
    }).then((phases) => phases[0]);
  const killAndRestart = async (old: BenchServer): Promise<Recovered> => {
    old.kill('SIGKILL');
    await old.exited;
    const { master, admin } = await start();
    const logLine = master.logLines().find((l) => l.includes('recovered txid')) ?? '';
    const m = /recovered txid (\d+) \(checkpoint (\d+)\)/.exec(logLine);
    if (!m) throw new Error(`no "recovered txid" line in the restarted master's log:\n${master.logLines().join('\n')}`);
    return { master, admin, txid: Number(m[1]), checkpointTxid: Number(m[2]), logLine };
  };
  const step = (what: string): void => console.error(`[master-scale] ${new Date().toISOString()} ${what}`);

  try {
    const { master, admin } = await start();
    const heapBefore = (await admin.status(true)).heapUsedBytes;
    step(`populating ${a.files} files`);
    const populate = await creates(master, a.files, '/populate');
    const afterPopulate = await admin.status(true);
    const heapPerFile = (afterPopulate.heapUsedBytes - heapBefore) / a.files;
    const memAfterPopulate = procMemory(master.pid);
    step(`populated: ${populate.opsPerSec}/s; heap ${round(heapPerFile)} B/file`);

    step('(a) create latency, no checkpoint');
    const baseline = await creates(master, a.latencyFiles, '/latency-baseline');
    step('(b) create latency during a checkpoint');
    const t0 = performance.now();
    const checkpointDone: Promise<CheckpointResult & { wallMs: number }> =
      admin.checkpoint().then((c) => ({ ...c, wallMs: performance.now() - t0 }));
    const [checkpoint, duringCheckpoint] = await Promise.all([checkpointDone, creates(master, a.latencyFiles, '/latency-checkpoint')]);
    step(`checkpoint txid ${checkpoint.txid}: ${checkpoint.bytes} bytes in ${checkpoint.durationMs} ms`);

    // (c) Top up the log to --logged-ops transactions after the checkpoint: the creates of (b)
    // that committed after its snapshot are already there.
    const afterB = await admin.status();
    const remaining = a.loggedOps - (afterB.txid - afterB.checkpointTxid);
    const topUpFiles = filesForTransactions(remaining, a.filesPerDir);
    step(`(c) ${topUpFiles} creates (${remaining} transactions) after the checkpoint`);
    if (topUpFiles > 0) await creates(master, topUpFiles, '/after-checkpoint');
    const beforeKill = await admin.status();

    step('(d) SIGKILL and restart');
    const recovered = await killAndRestart(master);
    if (recovered.txid !== beforeKill.txid) throw new Error(`recovered txid ${recovered.txid}, expected ${beforeKill.txid}`);
    const afterRecovery = await recovered.admin.status(true);
    const memAfterRecovery = procMemory(recovered.master.pid);

    // Splits recovery time into checkpoint loading and log replay.
    step('(e) checkpoint, SIGKILL and restart: recovery from the checkpoint alone');
    await recovered.admin.checkpoint();
    const fromCheckpoint = await killAndRestart(recovered.master);

    const result = {
      benchmark: 'master-scale', date: new Date().toISOString(), cpus: os.cpus().length, node: process.version,
      files: a.files, clients: a.clients, channels: a.channels, filesPerDir: a.filesPerDir,
      populate: { ...populate, inodes: afterPopulate.inodes, heapBeforeBytes: heapBefore, heapAfterBytes: afterPopulate.heapUsedBytes,
        heapBytesPerFile: round(heapPerFile), ...memAfterPopulate },
      createBaseline: baseline,
      createDuringCheckpoint: duringCheckpoint,
      checkpoint,
      loggedAfterCheckpoint: { topUpFiles, transactions: beforeKill.txid - beforeKill.checkpointTxid },
      recovery: {
        ms: round(recovered.master.startupMs), recoveredTxid: recovered.txid, checkpointTxid: recovered.checkpointTxid,
        replayedTxns: recovered.txid - recovered.checkpointTxid, inodes: afterRecovery.inodes,
        heapUsedBytes: afterRecovery.heapUsedBytes, ...memAfterRecovery, logLine: recovered.logLine,
      },
      recoveryFromCheckpointOnly: {
        ms: round(fromCheckpoint.master.startupMs), replayedTxns: fromCheckpoint.txid - fromCheckpoint.checkpointTxid,
        logLine: fromCheckpoint.logLine,
      },
    };
    printTables(result);
    writeJson(a.out, result);
    console.log(`\nJSON: ${a.out}`);
  } finally {
    for (const admin of admins) admin.close();
    // SIGTERM first: a master run with --cpu-prof writes its profile only on a clean exit.
    await Promise.all(masters.map((m) => m.stop()));
    removeDir(root);
  }
}

interface Recovered {
  master: BenchServer;
  admin: MasterClient;
  /** From the master's `recovered txid N (checkpoint C)` log line. */
  txid: number;
  checkpointTxid: number;
  logLine: string;
}

/** Files for a create run of about `txns` transactions: one mkdir for --dir, one per directory, one per file. */
function filesForTransactions(txns: number, filesPerDir: number): number {
  return Math.max(0, txns - 1 - Math.ceil((txns - 1) / (filesPerDir + 1)));
}

interface ScaleResult {
  files: number;
  populate: MeasuredPhase & { heapBytesPerFile: number; rssBytes: number };
  createBaseline: MeasuredPhase;
  createDuringCheckpoint: MeasuredPhase;
  checkpoint: CheckpointResult & { wallMs: number };
  recovery: { ms: number; replayedTxns: number; heapUsedBytes: number; rssBytes: number; peakRssBytes: number };
  recoveryFromCheckpointOnly: { ms: number; replayedTxns: number };
}

function printTables(r: ScaleResult): void {
  const mb = (bytes: number): number => round(bytes / MB);
  console.log(`## Master at ${r.files} files\n`);
  console.log(markdownTable(['measure', 'value', 'target'], [
    ['populate creates/s (master CPU %)', `${r.populate.opsPerSec} (${r.populate.masterCpuPct})`, ''],
    ['heap bytes per file', r.populate.heapBytesPerFile, `<= 300: ${r.populate.heapBytesPerFile <= 300 ? 'met' : 'MISSED'}`],
    ['master RSS after populate, MB', mb(r.populate.rssBytes), ''],
    ['checkpoint MB / duration ms', `${mb(r.checkpoint.bytes)} / ${round(r.checkpoint.durationMs, 0)}`, ''],
    ['recovery: checkpoint + logged txns', `${r.recovery.replayedTxns} txns replayed`, ''],
    ['recovery ms (spawn to listening)', r.recovery.ms, `<= 10000: ${r.recovery.ms <= 10_000 ? 'met' : 'MISSED'}`],
    ['recovery ms, checkpoint alone', `${r.recoveryFromCheckpointOnly.ms} (${r.recoveryFromCheckpointOnly.replayedTxns} txns replayed)`, ''],
    ['heap / RSS / peak RSS after recovery, MB', `${mb(r.recovery.heapUsedBytes)} / ${mb(r.recovery.rssBytes)} / ${mb(r.recovery.peakRssBytes)}`, ''],
  ]));
  console.log(`\n## Creates (${r.createBaseline.ops} new files each) with and without a checkpoint being written\n`);
  console.log(markdownTable(['run', 'creates/s', 'p50 ms', 'p99 ms', 'run ms', 'master CPU %'], [
    ['no checkpoint', r.createBaseline.opsPerSec, r.createBaseline.p50Ms, r.createBaseline.p99Ms, round(r.createBaseline.seconds * 1000), r.createBaseline.masterCpuPct],
    [`during checkpoint (${round(r.checkpoint.durationMs, 0)} ms)`, r.createDuringCheckpoint.opsPerSec, r.createDuringCheckpoint.p50Ms,
      r.createDuringCheckpoint.p99Ms, round(r.createDuringCheckpoint.seconds * 1000), r.createDuringCheckpoint.masterCpuPct],
  ]));
}

function parseFlags(): Args {
  const { values } = parseArgs({
    options: {
      files: { type: 'string', default: '1000000' },
      'latency-files': { type: 'string', default: '20000' },
      'logged-ops': { type: 'string', default: '100000' },
      clients: { type: 'string', default: '32' },
      channels: { type: 'string', default: '4' },
      'files-per-dir': { type: 'string', default: '1000' },
      'master-node-args': { type: 'string', default: '' },
      out: { type: 'string', default: '/tmp/chunkfs-bench/master-scale.json' },
    },
    strict: true,
  });
  return {
    files: positive('files', values.files!),
    latencyFiles: positive('latency-files', values['latency-files']!),
    loggedOps: positive('logged-ops', values['logged-ops']!),
    clients: positive('clients', values.clients!),
    channels: positive('channels', values.channels!),
    filesPerDir: positive('files-per-dir', values['files-per-dir']!),
    masterNodeArgs: words(values['master-node-args']!),
    out: values.out!,
  };
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
