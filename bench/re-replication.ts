import * as os from 'os';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { parseArgs } from 'util';
import { ChunkClientPool } from '../client/chunk-client';
import { FileWriter } from '../client/file-writer';
import { ClusterReport, MasterClient } from '../client/master-client';
import { BenchServer, makeTempDir, positive, removeDir, round, spawnChunkserver, spawnMaster, writeJson } from './bench-util';

/**
 * Re-replication speed: a master and --chunkservers chunkservers in a temporary directory
 * (--chunk-size chunks, replication --replication), files written until one chunkserver holds
 * --victim-mib MiB of replicas, then that chunkserver is killed with SIGKILL. Measured from the
 * kill: seconds until the master declares it dead, and until every chunk is back at its
 * replication factor on the others; MB/s = the victim's replica bytes / those seconds.
 * Prints one JSON object (also written to --out). Usage:
 *   node dist/bench/re-replication.js [--victim-mib 2048] [--chunk-size 67108864] [--out FILE]
 */

interface Args {
  victimBytes: number;
  chunkSize: number;
  chunkservers: number;
  replication: number;
  deadTimeoutSec: number;
  /** --replication-bandwidth for each chunkserver (MB/s); '' leaves the chunkserver default */
  bandwidth: string;
  writers: number;
  out: string;
}

/** 10^6 bytes, as `bench data` and the chunkserver's --replication-bandwidth count them. */
const MB = 1e6;
const POLL_MS = 200;
/** Bytes per write call: the largest piece one chunk write carries. */
const PIECE = 8 * 1024 * 1024;

async function main(): Promise<void> {
  const a = parseFlags();
  const root = makeTempDir('chunkfs-bench-rerep-');
  const servers: BenchServer[] = [];
  const peers = new ChunkClientPool();
  let client: MasterClient | null = null;
  const stopAll = async (): Promise<void> => {
    client?.close();
    peers.closeAll();
    await Promise.all(servers.map((s) => s.stop()));
    removeDir(root);
  };
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));
  try {
    const master = await spawnMaster({
      metaDir: path.join(root, 'meta'),
      masterArgs: ['--chunk-size', String(a.chunkSize), '--replication', String(a.replication), '--dead-timeout', String(a.deadTimeoutSec)],
    });
    servers.push(master);
    const csArgs = ['--chunk-size', String(a.chunkSize), ...(a.bandwidth ? ['--replication-bandwidth', a.bandwidth] : [])];
    const chunkservers: BenchServer[] = [];
    for (let i = 0; i < a.chunkservers; i++) chunkservers.push(await spawnChunkserver(path.join(root, `cs${i}`), master.address, csArgs));
    servers.push(...chunkservers);
    client = new MasterClient(master.address, { deadlineMs: 60_000 });
    const admin = client;
    await until(admin, (r) => r.chunkservers.filter((c) => c.alive).length === a.chunkservers, 60);

    const write = await fill(admin, peers, a);
    await until(admin, fullyReplicated, 600);
    const before = await admin.report();
    const victim = before.chunkservers.reduce((x, y) => (y.chunks > x.chunks ? y : x));
    const victimBytes = victim.chunks * a.chunkSize; // every chunk written is full
    progress(`killing ${victim.address} holding ${victim.chunks} chunks (${(victimBytes / MB).toFixed(0)} MB)`);

    chunkservers.find((c) => c.address === victim.address)!.kill('SIGKILL');
    const t0 = performance.now();
    let deadAt = 0;
    await until(admin, (r) => {
      const dead = !r.chunkservers.find((c) => c.id === victim.id)!.alive;
      if (dead && deadAt === 0) deadAt = performance.now();
      return dead && fullyReplicated(r);
    }, 3600);
    const done = performance.now();
    const fsck = await admin.fsck('/');
    if (!fsck.healthy || fsck.unhealthy.length > 0) throw new Error(`fsck after re-replication: ${JSON.stringify(fsck.chunks)}`);

    const totalSec = (done - t0) / 1000;
    const copySec = (done - deadAt) / 1000;
    const result = {
      benchmark: 're-replication',
      chunkservers: a.chunkservers,
      replication: a.replication,
      chunkSizeBytes: a.chunkSize,
      deadTimeoutSec: a.deadTimeoutSec,
      replicationBandwidthMBps: a.bandwidth === '' ? 'default' : Number(a.bandwidth),
      chunksTotal: before.chunks!.total,
      writeMBps: round(write.bytes / MB / write.seconds),
      victimChunks: victim.chunks,
      victimBytes,
      secondsToDeclaredDead: round((deadAt - t0) / 1000, 2),
      secondsToFullReplication: round(totalSec, 2),
      copySeconds: round(copySec, 2),
      MBps: round(victimBytes / MB / totalSec),
      copyMBps: round(victimBytes / MB / copySec),
      cpus: os.cpus().length,
    };
    console.log(JSON.stringify(result));
    writeJson(a.out, result);
  } finally {
    await stopAll();
  }
}

/** Every chunk at its factor: none under- or over-replicated or missing. */
function fullyReplicated(r: ClusterReport): boolean {
  const c = r.chunks!;
  return c.total > 0 && c.underReplicated + c.overReplicated + c.missing === 0;
}

/**
 * Writes files of whole chunks (--writers at once, one chunk per file) until the fullest
 * chunkserver holds the victim's share; returns what was written and how long it took.
 */
async function fill(admin: MasterClient, peers: ChunkClientPool, a: Args): Promise<{ bytes: number; seconds: number }> {
  const piece = Buffer.alloc(Math.min(PIECE, a.chunkSize));
  for (let i = 0; i < piece.length; i++) piece[i] = (i * 2654435761) >>> 24;
  const started = performance.now();
  let files = 0;
  const fullest = async () => Math.max(...(await admin.report()).chunkservers.map((c) => c.chunks)) * a.chunkSize;
  while ((await fullest()) < a.victimBytes) {
    await Promise.all(Array.from({ length: a.writers }, async () => {
      const name = `/f${files++}`;
      const writer = new FileWriter(admin, peers);
      await admin.create(name, 0o644, true);
      for (let off = 0; off < a.chunkSize; off += piece.length) await writer.write(name, off, piece.subarray(0, Math.min(piece.length, a.chunkSize - off)));
      await writer.close();
    }));
    progress(`written ${files} chunks`);
  }
  const seconds = (performance.now() - started) / 1000;
  return { bytes: files * a.chunkSize, seconds };
}

/** Polls the report until `ok`; throws after `maxSec`. */
async function until(admin: MasterClient, ok: (r: ClusterReport) => boolean, maxSec: number): Promise<void> {
  const deadline = performance.now() + maxSec * 1000;
  for (;;) {
    const r = await admin.report();
    if (ok(r)) return;
    if (performance.now() > deadline) throw new Error(`gave up after ${maxSec} s: ${JSON.stringify(r.chunks)}`);
    await new Promise((res) => setTimeout(res, POLL_MS));
  }
}

function progress(line: string): void {
  process.stderr.write(`re-replication: ${line}\n`);
}

function parseFlags(): Args {
  const { values } = parseArgs({
    options: {
      'victim-mib': { type: 'string', default: '2048' },
      'chunk-size': { type: 'string', default: String(64 * 1024 * 1024) },
      chunkservers: { type: 'string', default: '4' },
      replication: { type: 'string', default: '3' },
      'dead-timeout': { type: 'string', default: '5' },
      'replication-bandwidth': { type: 'string', default: '' },
      writers: { type: 'string', default: '4' },
      out: { type: 'string', default: '/tmp/chunkfs-bench/re-replication.json' },
    },
    strict: true,
  });
  const bandwidth = values['replication-bandwidth']!;
  if (bandwidth !== '' && !(Number(bandwidth) >= 0)) throw new Error(`--replication-bandwidth must be MB/s >= 0, not ${bandwidth}`);
  const a: Args = {
    victimBytes: positive('victim-mib', values['victim-mib']!) * 1024 * 1024,
    chunkSize: positive('chunk-size', values['chunk-size']!),
    chunkservers: positive('chunkservers', values.chunkservers!),
    replication: positive('replication', values.replication!),
    deadTimeoutSec: positive('dead-timeout', values['dead-timeout']!),
    bandwidth,
    writers: positive('writers', values.writers!),
    out: values.out!,
  };
  if (a.chunkservers <= a.replication) throw new Error('--chunkservers must exceed --replication: the survivors must hold every replica');
  return a;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
