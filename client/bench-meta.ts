import { performance } from 'perf_hooks';
import { FsError } from '../server/common/fs-error';
import { MasterClient } from './master-client';
import { mkdirParents, removeTree } from './tree-ops';

/**
 * Metadata throughput benchmark in the manner of HDFS's NNThroughputBenchmark: N files spread
 * over directories of K files, C logical clients each keeping one call in flight, sharing a
 * small pool of channels. Only the operations asked for are timed; set-up and clean-up are not.
 */

export const META_OPS = ['create', 'stat', 'rename', 'delete'] as const;
export type MetaOp = (typeof META_OPS)[number];

export interface MetaBenchOptions {
  master: string;
  /** Timed phases, in order. */
  ops: MetaOp[];
  files: number;
  clients: number;
  /** gRPC channels (connections) the clients share round-robin. */
  channels: number;
  dir: string;
  filesPerDir: number;
  /** Leave the files and directories in place. */
  keep: boolean;
}

export interface MetaOpResult {
  op: MetaOp;
  ops: number;
  seconds: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

type Call = (client: MasterClient, i: number) => Promise<unknown>;

export async function runMetaBench(o: MetaBenchOptions, report: (r: MetaOpResult) => void): Promise<void> {
  checkOpOrder(o.ops);
  const pool = Array.from({ length: o.channels }, () => new MasterClient(o.master));
  const dirs = Math.ceil(o.files / o.filesPerDir);
  const dirPath = (d: number): string => `${o.dir}/d${d}`;
  const filePath = (i: number, renamed: boolean): string =>
    `${dirPath(Math.floor(i / o.filesPerDir))}/f${i}${renamed ? '.r' : ''}`;
  try {
    // A directory of its own, so that clean-up can remove everything below it.
    const madeDirs = await mkdirParents(pool[0], o.dir, 0o755);
    if (!madeDirs.includes(o.dir)) throw new FsError('EEXIST', `${o.dir} exists; the benchmark needs a new --dir`);
    try {
      await runPhase(pool, dirs, o.clients, (c, d) => c.mkdir(dirPath(d), 0o755));
      if (o.ops[0] !== 'create') await runPhase(pool, o.files, o.clients, (c, i) => c.create(filePath(i, false), 0o644, true));
      let renamed = false;
      for (const op of o.ops) {
        const call: Call = {
          create: (c: MasterClient, i: number) => c.create(filePath(i, false), 0o644, true),
          stat: (c: MasterClient, i: number) => c.getattr(filePath(i, renamed)),
          rename: (c: MasterClient, i: number) => c.rename(filePath(i, false), filePath(i, true)),
          delete: (c: MasterClient, i: number) => c.unlink(filePath(i, renamed)),
        }[op];
        report(summarize(op, await runPhase(pool, o.files, o.clients, call)));
        if (op === 'rename') renamed = true;
      }
    } finally {
      if (!o.keep) {
        // Whatever a failure left behind, a tree walk per directory removes it; then the
        // directories made for --dir, innermost first.
        await runPhase(pool, dirs, o.clients, (c, d) => removeTree(c, dirPath(d)).catch(ignoreEnoent));
        for (const dir of madeDirs.reverse()) await pool[0].rmdir(dir);
      }
    }
  } finally {
    for (const client of pool) client.close();
  }
}

/** create makes the files, so it can only come first; nothing can follow delete. */
function checkOpOrder(ops: readonly MetaOp[]): void {
  if (ops.length === 0) throw new FsError('EINVAL', 'no operations given');
  if (ops.indexOf('create') > 0) throw new FsError('EINVAL', 'create must be the first operation');
  const del = ops.indexOf('delete');
  if (del >= 0 && del !== ops.length - 1) throw new FsError('EINVAL', 'delete must be the last operation');
}

/**
 * Calls `call` for 0..n-1 from `clients` concurrent loops (client k uses channel k mod pool
 * size) and returns the wall time and each call's latency. Stops at the first failure.
 */
async function runPhase(pool: MasterClient[], n: number, clients: number, call: Call):
  Promise<{ seconds: number; latenciesMs: Float64Array }> {
  const latenciesMs = new Float64Array(n);
  let next = 0;
  let failure: unknown = null;
  const loop = async (k: number): Promise<void> => {
    const client = pool[k % pool.length];
    for (let i = next++; i < n && failure === null; i = next++) {
      const t0 = performance.now();
      try {
        await call(client, i);
      } catch (err) {
        failure ??= err;
      }
      latenciesMs[i] = performance.now() - t0;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: Math.min(clients, n) }, (_, k) => loop(k)));
  if (failure !== null) throw failure;
  return { seconds: (performance.now() - start) / 1000, latenciesMs };
}

function summarize(op: MetaOp, { seconds, latenciesMs }: { seconds: number; latenciesMs: Float64Array }): MetaOpResult {
  const sorted = latenciesMs.slice().sort();
  const percentile = (p: number): number => round(sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? 0, 3);
  return {
    op,
    ops: sorted.length,
    seconds: round(seconds, 4),
    opsPerSec: round(sorted.length / seconds, 1),
    p50Ms: percentile(0.5),
    p99Ms: percentile(0.99),
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function ignoreEnoent(err: unknown): void {
  if (!(err instanceof FsError && err.code === 'ENOENT')) throw err;
}
