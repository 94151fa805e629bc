import { strict as assert } from 'assert';
import { randomBytes } from 'crypto';
import { ChunkClient, ChunkClientPool } from '../client/chunk-client';
import { FileWriter } from '../client/file-writer';
import { OpenFile } from '../client/fs/open-file';
import { BufferPool } from '../server/common/buffer-pool';
import { TestCluster } from './helpers/test-cluster';

const MiB = 1024 * 1024;
const CHUNK = 4 * MiB;

/** Real chunk clients that count the bytes their reads bring back. */
class CountingPool extends ChunkClientPool {
  fetched = 0;
  private readonly counted = new Set<ChunkClient>();

  override get(address: string): ChunkClient {
    const client = super.get(address);
    if (!this.counted.has(client)) {
      this.counted.add(client);
      const read = client.read.bind(client);
      client.read = async (handle, version, offset, length) => {
        const data = await read(handle, version, offset, length);
        this.fetched += data.length;
        return data;
      };
    }
    return client;
  }
}

/**
 * An open file's read-ahead on a real cluster: the window grows with the run of reads one
 * after another, as the kernel's does, so that two pages read in a row (an mmap'd page's fault,
 * then the next page's) do not fetch the whole 16 MiB window, while a long sequential read does.
 */
describe('read-ahead of an open file', function () {
  this.timeout(60_000);
  let cluster: TestCluster;
  const content = randomBytes(32 * MiB);

  before(async () => {
    cluster = await TestCluster.start('read-ahead', 3, ['--chunk-size', String(CHUNK)]);
    await cluster.client.create('/big', 0o644, true);
    await new FileWriter(cluster.client, cluster.peers).write('/big', 0, content);
  });
  after(async () => cluster?.stop());

  const open = async (peers: ChunkClientPool): Promise<OpenFile> => {
    const attr = await cluster.client.getattr('/big');
    const tuning = { writeBufferBytes: 8 * MiB, readAheadBytes: 16 * MiB };
    return new OpenFile(cluster.client, peers, '/big', attr.ino, attr.size, tuning, new BufferPool(tuning.writeBufferBytes), CHUNK, () => undefined, () => undefined);
  };

  it('fetches a few pages more after two pages in a row, not the whole window', async () => {
    const peers = new CountingPool();
    try {
      const file = await open(peers);
      const at = 5 * MiB + 4096;
      assert.ok((await file.read(at, 4096)).equals(content.subarray(at, at + 4096)));
      assert.ok((await file.read(at + 4096, 4096)).equals(content.subarray(at + 4096, at + 8192)));
      await new Promise((r) => setTimeout(r, 200)); // read-ahead under way lands
      assert.ok(peers.fetched <= 64 * 1024, `${peers.fetched} bytes fetched for two pages`);
    } finally {
      peers.closeAll();
    }
  });

  it('grows the window to the whole 16 MiB along a sequential read, and reads the file whole', async () => {
    const peers = new CountingPool();
    try {
      const file = await open(peers);
      const parts: Buffer[] = [];
      for (let at = 0; at < 8 * MiB; at += 128 * 1024) parts.push(await file.read(at, 128 * 1024));
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(peers.fetched >= 8 * MiB + 12 * MiB, `${peers.fetched} bytes fetched after 8 MiB read in a row`);
      for (let at = 8 * MiB; at < content.length; at += MiB) parts.push(await file.read(at, MiB));
      assert.ok(Buffer.concat(parts).equals(content));
    } finally {
      peers.closeAll();
    }
  });
});
