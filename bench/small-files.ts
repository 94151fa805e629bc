import { ChunkClientPool } from '../client/chunk-client';
import { FileWriter } from '../client/file-writer';
import { TestCluster } from '../test/helpers/test-cluster';
import { median } from './bench-util';

/**
 * Small-file creation through the client library, as a mount does it for `echo > f`: create,
 * write 4 KiB (durable on 3 replicas, size logged), close (leases released in the background).
 * A master and 3 chunkservers on loopback (real processes, default 64 MiB chunks), one writer,
 * files one after the other. Prints files/s per round and the median.
 *
 *   node dist/bench/small-files.js [--files 500] [--rounds 3]
 */
async function main(): Promise<void> {
  const arg = (name: string, dflt: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i < 0 ? dflt : Number(process.argv[i + 1]);
  };
  const files = arg('files', 500);
  const rounds = arg('rounds', 3);
  const cluster = await TestCluster.start('small-files', 3, ['--replication', '3']);
  const peers = new ChunkClientPool();
  const data = Buffer.alloc(4096, 0x61);
  const rates: number[] = [];
  const closing: Array<Promise<void>> = [];
  try {
    for (let r = 0; r < rounds; r++) {
      const dir = `/r${r}`;
      await cluster.client.mkdir(dir, 0o755);
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < files; i++) {
        const path = `${dir}/f${i}`;
        await cluster.client.create(path, 0o644, true);
        const writer = new FileWriter(cluster.client, peers);
        await writer.write(path, 0, data);
        closing.push(writer.close());
      }
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      rates.push(files / seconds);
      console.log(`round ${r + 1}: ${files} files in ${seconds.toFixed(2)} s = ${(files / seconds).toFixed(1)} files/s (${((seconds / files) * 1000).toFixed(2)} ms/file)`);
    }
    console.log(`median: ${median(rates).toFixed(1)} files/s`);
  } finally {
    await Promise.all(closing);
    peers.closeAll();
    await cluster.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
