import { strict as assert } from 'assert';
import { createHash, randomBytes } from 'crypto';
import * as fs from 'fs';
import { FileWriter } from '../client/file-writer';
import type { ClusterReport } from '../client/master-client';
import { flipChunkByte } from './helpers/corrupt';
import { TestCluster } from './helpers/test-cluster';

const MiB = 1 << 20;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * The chunkserver's background scrubber as a process: rot in a replica that nobody reads is
 * found by the scrubber alone (no client reads the file until the end), reported in
 * heartbeats, and the master copies a good replica elsewhere and deletes the rotten one.
 * Four chunkservers, so that a fourth can take the new copy of a three-replica chunk.
 */
describe('scrubber: corruption in a chunk nobody reads', function () {
  this.timeout(120_000);
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start('scrub', 4, ['--chunk-size', String(MiB), '--dead-timeout', '1.5'],
      // Verify every chunk, however recently written, in passes 0.2 s apart.
      ['--scrub-rate', '64', '--scrub-idle', '0', '--scrub-interval', '0.2']);
  });
  after(async () => cluster?.stop());

  const settled = (r: ClusterReport) =>
    r.chunks!.total > 0 && r.chunks!.underReplicated + r.chunks!.overReplicated + r.chunks!.missing + r.chunks!.corrupt === 0;

  it('finds a flipped byte, and the master replaces the corrupt replica', async () => {
    const data = randomBytes(2 * MiB + 4321);
    const writer = new FileWriter(cluster.client, cluster.peers);
    await cluster.client.create('/cold', 0o644, true);
    await writer.write('/cold', 0, data);
    await writer.close();
    await cluster.until(settled, 'chunks at three replicas');

    const { chunks } = await cluster.client.chunkLocations('/cold', 0, 10);
    const victim = chunks[1];
    const holders = cluster.replicaFiles(victim.handle);
    assert.equal(holders.length, 3);
    const rotten = holders[0];
    await flipChunkByte(rotten.file, 12345);

    // Only the scrubber reads that replica: wait for the master to have deleted it and to
    // have the chunk back at three good replicas, all on other chunkservers.
    const r = await cluster.until((rep) => settled(rep) && !fs.existsSync(rotten.file) &&
      cluster.replicaFiles(victim.handle).length === 3, 'the rotten replica found, replaced and deleted', 60_000);
    assert.equal(r.chunks!.total, 3);
    const now = cluster.replicaFiles(victim.handle);
    assert.ok(!now.some((h) => h.cs === rotten.cs), 'the new copy is on another chunkserver');
    assert.equal(sha(await cluster.readAll('/cold')), sha(data));
    // Every replica of that chunk now serves exactly the written bytes.
    const [loc] = (await cluster.client.chunkLocations('/cold', 1, 1)).chunks;
    assert.equal(loc.replicas.length, 3);
    for (const address of loc.replicas) {
      const got = await cluster.peers.get(address).read(loc.handle, loc.version, 0, MiB);
      assert.equal(sha(got), sha(data.subarray(MiB, 2 * MiB)), address);
    }
  });
});
