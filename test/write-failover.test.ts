import { strict as assert } from 'assert';
import { leaseRuns } from '../client/master-client';
import { randomBytes } from 'crypto';
import { FileWriter } from '../client/file-writer';
import { kill, TestCluster } from './helpers/test-cluster';

const MiB = 1 << 20;

/**
 * Placement around chunkservers a writer could not reach, and writes while a chunkserver has
 * just died and the master does not know it yet (its dead timeout is a minute here): every
 * placement on three chunkservers would include the dead one.
 */
describe('writes around an unreachable chunkserver', function () {
  this.timeout(120_000);
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start('write-failover', 3, ['--chunk-size', String(MiB), '--dead-timeout', '60']);
  });
  after(async () => cluster?.stop());

  it('places an unwritten chunk again without the servers a writer could not reach (once, and only if others can take it); a written chunk stays', async () => {
    await cluster.client.create('/avoid', 0o644, true);
    const first = await cluster.client.allocateChunk('/avoid', 0);
    const bad = first.chunk.replicas[1];
    const again = await cluster.client.allocateChunk('/avoid', 0, [bad]);
    assert.notEqual(again.chunk.handle, first.chunk.handle, 'placed again, as a new chunk');
    assert.deepEqual([...again.chunk.replicas].sort(), first.chunk.replicas.filter((a) => a !== bad).sort());
    assert.ok(again.createReplicas && again.leaseEnds !== null && leaseRuns(again.leaseEnds, 0));
    // A second writer reporting the same server gets the placement already made without it.
    const third = await cluster.client.allocateChunk('/avoid', 0, [bad]);
    assert.equal(third.chunk.handle, again.chunk.handle);
    await new FileWriter(cluster.client, cluster.peers).write('/avoid', 0, Buffer.from('x'));
    const written = await cluster.client.allocateChunk('/avoid', 0, again.chunk.replicas);
    assert.deepEqual([written.chunk.handle, written.createReplicas], [again.chunk.handle, false], 'a written chunk is not placed again');
    // Naming every server leaves nowhere else: they are tried again rather than ENOSPC.
    await cluster.client.create('/avoid-all', 0o644, true);
    const everyone = cluster.chunkservers.map((c) => c.address);
    const anyway = await cluster.client.allocateChunk('/avoid-all', 0, everyone);
    assert.deepEqual([...anyway.chunk.replicas].sort(), [...everyone].sort());
  });

  it('new chunks are placed again without the server that failed their first write; leased and existing chunks go on without it', async () => {
    const writer = new FileWriter(cluster.client, cluster.peers);
    const before = randomBytes(MiB + 100);
    await cluster.client.create('/before', 0o644, true);
    await writer.write('/before', 0, before);
    await writer.close();

    // A writer holding a lease on a written chunk when the server dies.
    const held = new FileWriter(cluster.client, cluster.peers);
    const heldData = randomBytes(300_000);
    await cluster.client.create('/held', 0o644, true);
    await held.write('/held', 0, heldData);

    const victim = cluster.chunkservers[1];
    await kill(victim);
    const report = await cluster.client.report();
    assert.equal(report.chunkservers.filter((c) => c.alive).length, 3, 'the master has not noticed yet');

    // BUG: the first write of each new chunk failed four times on the dead replica (EIO),
    // because the master handed out the same placement until the dead timeout.
    const files = Array.from({ length: 5 }, (_, i) => ({ path: `/after-${i}`, data: randomBytes(i === 0 ? 3 * MiB + 7 : 4096 * (i + 1)) }));
    for (const f of files) {
      const w = new FileWriter(cluster.client, cluster.peers);
      await cluster.client.create(f.path, 0o644, true);
      await w.write(f.path, 0, f.data);
      await w.close();
    }
    // An existing chunk (the tail of /before) written again: its next lease leaves the dead replica out.
    const tail = randomBytes(5000);
    const w = new FileWriter(cluster.client, cluster.peers);
    await w.write('/before', before.length, tail);
    await w.close();

    // BUG: the held lease, naming the dead replica, was handed out again on every retry.
    const patch = randomBytes(70_000);
    await held.write('/held', 100_000, patch);
    await held.truncate('/held', 150_000);
    await held.close();
    const heldModel = Buffer.concat([heldData.subarray(0, 100_000), patch]).subarray(0, 150_000);
    assert.ok((await cluster.readAll('/held')).equals(heldModel), '/held');

    for (const f of files) {
      assert.ok((await cluster.readAll(f.path)).equals(f.data), f.path);
      const { chunks } = await cluster.client.chunkLocations(f.path, 0, 10);
      for (const c of chunks) {
        assert.ok(!c.replicas.includes(victim.address), `${f.path} chunk ${c.index} placed on the dead server`);
        assert.equal(c.replicas.length, 2, `${f.path} chunk ${c.index} on both live servers`);
      }
    }
    assert.ok((await cluster.readAll('/before')).equals(Buffer.concat([before, tail])));
  });
});
