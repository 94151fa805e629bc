import { ChunkClientPool } from './chunk-client';
import { FileReader } from './file-reader';
import { FileWriter } from './file-writer';
import { MasterClient } from './master-client';
import { removeTree } from './tree-ops';

export interface DataBenchOptions {
  master: string;
  files: number;
  /** bytes per file */
  size: number;
  clients: number;
  /** ChunkFS directory the files go in (must not exist) */
  dir: string;
  keep: boolean;
}

export interface DataPhaseResult {
  phase: 'write' | 'read';
  files: number;
  bytes: number;
  seconds: number;
  /** 10^6 bytes per second, like TestDFSIO */
  MBps: number;
}

/** Bytes written per call: the largest piece one chunk write carries. */
const PIECE = 8 * 1024 * 1024;

/**
 * TestDFSIO-style data benchmark: `clients` concurrent writers each write their share of
 * `files` files of `size` bytes (one write lease per chunk, chain-replicated), then as many
 * readers read them back. Each phase is timed as a whole (aggregate throughput). The data
 * is one random-looking buffer reused, which is fine: nothing in the path compresses.
 */
export async function runDataBench(o: DataBenchOptions, report: (r: DataPhaseResult) => void): Promise<void> {
  const master = new MasterClient(o.master, { deadlineMs: 60_000 });
  const peers = new ChunkClientPool();
  const piece = Buffer.alloc(Math.min(PIECE, o.size));
  for (let i = 0; i < piece.length; i++) piece[i] = (i * 2654435761) >>> 24;
  const names = Array.from({ length: o.files }, (_, i) => `${o.dir}/f${i}`);
  const shares = Array.from({ length: o.clients }, (_, c) => names.filter((_n, i) => i % o.clients === c));
  try {
    await master.mkdir(o.dir, 0o755);
    report(await timed('write', o, () => Promise.all(shares.map(async (share) => {
      const writer = new FileWriter(master, peers);
      for (const name of share) {
        await master.create(name, 0o644, true);
        for (let off = 0; off < o.size; off += piece.length) {
          await writer.write(name, off, piece.subarray(0, Math.min(piece.length, o.size - off)));
        }
      }
      await writer.close();
    }))));
    report(await timed('read', o, () => Promise.all(shares.map(async (share) => {
      const reader = new FileReader(master, peers);
      for (const name of share) for await (const part of reader.pieces(name)) void part;
    }))));
    if (!o.keep) await removeTree(master, o.dir);
  } finally {
    peers.closeAll();
    master.close();
  }
}

async function timed(phase: 'write' | 'read', o: DataBenchOptions, run: () => Promise<unknown>): Promise<DataPhaseResult> {
  const started = performance.now();
  await run();
  const seconds = (performance.now() - started) / 1000;
  const bytes = o.files * o.size;
  return { phase, files: o.files, bytes, seconds: round(seconds), MBps: round(bytes / 1e6 / seconds) };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
