import { randomBytes } from 'crypto';
import { performance } from 'perf_hooks';
import { FileReader } from '../client/file-reader';
import { FileWriter } from '../client/file-writer';
import type { ChunkLocation__Output as ChunkLocation } from '../generated/chunkfs/master/ChunkLocation';
import { TestCluster } from '../test/helpers/test-cluster';

/**
 * The read path alone, without FUSE: a master and 3 chunkservers (real processes on loopback,
 * as in the tests), one file written once, then rounds of
 *   - random 4 KiB reads through FileReader.readChunk, one at a time and 8 at a time,
 *   - sequential 4 MiB reads of the whole file,
 * reporting the median and spread over the rounds (the machine is shared: compare medians).
 *
 *   node dist/bench/read-path.js [--mib 64] [--reads 5000] [--rounds 5]
 */
const MiB = 1 << 20;
const SMALL = 4096;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs: number[]): string => `${Math.min(...xs).toFixed(0)}..${Math.max(...xs).toFixed(0)}`;

async function main(): Promise<void> {
  const fileMiB = arg('mib', 64);
  const reads = arg('reads', 5000);
  const rounds = arg('rounds', 5);
  const chunkSize = 16 * MiB;
  const cluster = await TestCluster.start('read-bench', 3, ['--chunk-size', String(chunkSize)]);
  try {
    const path = '/bench';
    await cluster.client.create(path, 0o644, true);
    const writer = new FileWriter(cluster.client, cluster.peers, chunkSize);
    for (let at = 0; at < fileMiB * MiB; at += 4 * MiB) await writer.write(path, at, randomBytes(4 * MiB));
    await writer.close();
    const size = fileMiB * MiB;
    const { chunks } = await cluster.client.chunkLocations(path, 0, Math.ceil(size / chunkSize));
    const reader = new FileReader(cluster.client, cluster.peers);
    const readAt = (offset: number, length: number): Promise<Buffer> => {
      const index = Math.floor(offset / chunkSize);
      const chunk = chunks.find((c: ChunkLocation) => c.index === index)!;
      return reader.readChunk(path, chunk, offset - index * chunkSize, length);
    };
    const randomReads = async (parallel: number): Promise<number> => {
      let left = reads;
      const t0 = performance.now();
      await Promise.all(Array.from({ length: parallel }, async () => {
        while (left-- > 0) await readAt(Math.floor(Math.random() * (size / SMALL)) * SMALL, SMALL);
      }));
      return reads / ((performance.now() - t0) / 1000);
    };
    const sequential = async (): Promise<number> => {
      const t0 = performance.now();
      for (let at = 0; at < size; at += 4 * MiB) await readAt(at, 4 * MiB);
      return fileMiB / ((performance.now() - t0) / 1000);
    };
    await randomReads(1); // warm-up: connections, JIT
    const results: Record<string, number[]> = { 'random 4 KiB, 1 at a time (IOPS)': [], 'random 4 KiB, 8 at a time (IOPS)': [], 'sequential 4 MiB (MiB/s)': [] };
    for (let r = 0; r < rounds; r++) {
      results['random 4 KiB, 1 at a time (IOPS)'].push(await randomReads(1));
      results['random 4 KiB, 8 at a time (IOPS)'].push(await randomReads(8));
      results['sequential 4 MiB (MiB/s)'].push(await sequential());
      process.stderr.write(`round ${r + 1}/${rounds} done\n`);
    }
    console.log(`| read (${fileMiB} MiB file, ${reads} random reads per round, ${rounds} rounds) | median | min..max |`);
    console.log('| --- | --- | --- |');
    for (const [name, xs] of Object.entries(results)) console.log(`| ${name} | ${median(xs).toFixed(0)} | ${spread(xs)} |`);
  } finally {
    await cluster.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
