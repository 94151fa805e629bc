import { strict as assert } from 'assert';
import { randomBytes } from 'crypto';
import { FileWriter } from '../client/file-writer';
import { TestCluster } from './helpers/test-cluster';

const MiB = 1 << 20;
const GC_DELAY_SEC = 3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Lazy reclamation (GFS-style): the replicas of a deleted file's chunks stay on the
 * chunkservers for --gc-delay seconds, then the replication monitor deletes every one of them.
 * The chunkservers are on tmpfs (needs root, as CI runs), with plenty of room.
 */
describe('lazy reclamation of deleted files\' chunks', function () {
  this.timeout(60_000);
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start('gc', 0, ['--chunk-size', String(MiB), '--dead-timeout', '1.5', '--gc-delay', String(GC_DELAY_SEC)]);
    // Room to spare whatever the host's disk holds: a server short of space deletes orphans at once.
    for (let i = 0; i < 3; i++) await cluster.startChunkserverOnTmpfs('64m');
    await cluster.until((r) => r.chunkservers.filter((cs) => cs.alive).length === 3, '3 chunkservers alive');
  });
  after(async () => cluster?.stop());

  it('keeps a deleted file\'s replicas for --gc-delay, then deletes every one; a kept file loses none', async () => {
    const writer = new FileWriter(cluster.client, cluster.peers);
    for (const p of ['/doomed', '/kept']) {
      await cluster.client.create(p, 0o644, true);
      await writer.write(p, 0, randomBytes(2 * MiB + 5)); // three chunks
    }
    await writer.close();
    const handlesOf = async (p: string) => (await cluster.client.chunkLocations(p, 0, 10)).chunks.map((c) => c.handle);
    const doomed = await handlesOf('/doomed');
    const kept = await handlesOf('/kept');
    const onDisk = (handles: number[]) => handles.map((h) => cluster.replicaFiles(h).length);
    assert.deepEqual(onDisk(doomed), [3, 3, 3]);

    await cluster.client.unlink('/doomed');
    const unlinkedAt = Date.now();
    await sleep(1500);
    assert.deepEqual(onDisk(doomed), [3, 3, 3], 'kept within the delay');
    while (onDisk(doomed).some((n) => n > 0)) {
      assert.ok(Date.now() - unlinkedAt < 30_000, `replicas still on disk: ${JSON.stringify(onDisk(doomed))}`);
      await sleep(200);
    }
    assert.ok(Date.now() - unlinkedAt >= GC_DELAY_SEC * 1000, 'deleted only after the delay');
    assert.deepEqual(onDisk(kept), [3, 3, 3]);
    assert.equal((await cluster.client.fsck('/')).healthy, true);
  });
});
