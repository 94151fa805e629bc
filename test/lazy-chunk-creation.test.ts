import { strict as assert } from 'assert';
import { leaseRuns } from '../client/master-client';
import { FileWriter } from '../client/file-writer';
import { expectErrno } from './helpers/errno';
import { kill, TestCluster } from './helpers/test-cluster';

const MiB = 1 << 20;

/**
 * Lazy replica creation: allocation only places a chunk (logged unwritten); its first write
 * creates the replicas and is confirmed in the log before it is acknowledged. A chunk allocated
 * and never written reads as zeros, is neither missing nor copied, and is placed again once its
 * lease is gone; crashes between allocation and the first write lose nothing acknowledged.
 */
describe('lazy chunk creation', function () {
  this.timeout(120_000);
  let cluster: TestCluster;

  beforeEach(async () => {
    cluster = await TestCluster.start('lazy', 3, ['--chunk-size', String(MiB), '--dead-timeout', '1.5']);
  });
  afterEach(async () => cluster?.stop());

  it('reads a chunk allocated and never written as zeros, never reports it missing, and places it again after its lease', async () => {
    await cluster.client.create('/never', 0o644, true);
    const { chunk } = await cluster.client.allocateChunk('/never', 0);
    await cluster.client.setattr('/never', { size: 5000 }); // a size that covers it, like a truncate up
    assert.deepEqual(await cluster.readAll('/never'), Buffer.alloc(5000));
    // Past a dead-timeout, so the replication monitor has made passes with full reports.
    await new Promise((r) => setTimeout(r, 3000));
    const r = await cluster.client.report();
    assert.deepEqual(r.chunks, { total: 0, underReplicated: 0, overReplicated: 0, corrupt: 0, missing: 0 });
    assert.deepEqual(cluster.replicaFiles(chunk.handle), [], 'nothing copied or created');
    assert.equal((await cluster.client.fsck('/')).healthy, true);

    await cluster.client.releaseLease('/never', 0, chunk.version); // its allocator gave up
    const writer = new FileWriter(cluster.client, cluster.peers);
    await writer.write('/never', 100, Buffer.from('late'));
    await writer.close();
    const [loc] = (await cluster.client.chunkLocations('/never', 0, 1)).chunks;
    assert.ok(loc.handle > chunk.handle, 'placed again under a new handle');
    assert.equal(cluster.replicaFiles(loc.handle).length, 3);
    const expected = Buffer.alloc(5000);
    expected.write('late', 100);
    assert.deepEqual(await cluster.readAll('/never'), expected);
  });

  it('a create for writing comes with its first chunk, only for a file it created', async () => {
    const made = await cluster.client.create('/first', 0o644, true, { allocateFirstChunk: true });
    const first = made.firstChunk!;
    assert.ok(first, 'an exclusive create that made the file carries its first chunk');
    assert.equal(first.chunk.index, 0);
    assert.equal(first.chunk.replicas.length, 3);
    assert.equal(first.createReplicas, true);
    assert.equal(first.chunkSize, MiB);
    assert.ok(first.leaseEnds !== null && leaseRuns(first.leaseEnds, 0));
    // It is the chunk AllocateChunk answers now: the same allocation, not a second one.
    assert.equal((await cluster.client.allocateChunk('/first', 0)).chunk.handle, first.chunk.handle);
    // Written through a writer that adopts it: one chunk, three replicas, the data.
    const writer = new FileWriter(cluster.client, cluster.peers);
    writer.adoptAllocation('/first', first);
    await writer.write('/first', 0, Buffer.from('first chunk'));
    await writer.close();
    assert.equal((await cluster.readAll('/first')).toString(), 'first chunk');
    assert.equal(cluster.replicaFiles(first.chunk.handle).length, 3);

    // An existing file is opened, never given a chunk; an exclusive create of it fails.
    await cluster.client.create('/empty', 0o644, true);
    const opened = await cluster.client.create('/empty', 0o644, false, { allocateFirstChunk: true });
    assert.equal(opened.created, false);
    assert.equal(opened.firstChunk, undefined);
    await expectErrno(cluster.client.create('/empty', 0o644, true, { allocateFirstChunk: true }), 'EEXIST');
    assert.deepEqual((await cluster.client.chunkLocations('/empty', 0, 1)).chunks, []);
    assert.equal((await cluster.client.fsck('/')).healthy, true);
  });

  it('a small first write lands on every replica; writes racing it keep every replica identical', async () => {
    const replicasOf = async (path: string) => {
      const [loc] = (await cluster.client.chunkLocations(path, 0, 1)).chunks;
      const { size } = await cluster.client.getattr(path);
      return Promise.all(loc.replicas.map((r) => cluster.peers.get(r).read(loc.handle, loc.version, 0, size)));
    };
    // Alone: one small piece, created on the three replicas.
    const lone = Buffer.from('x'.repeat(3000));
    const writer = new FileWriter(cluster.client, cluster.peers);
    await cluster.client.create('/lone', 0o644, true);
    await writer.write('/lone', 0, lone);
    for (const copy of await replicasOf('/lone')) assert.deepEqual(copy, lone);

    // Twenty overlapping small writes to one new chunk at once: whichever creates it, the
    // replicas must agree with each other and with the order the writer's calls resolved in.
    await cluster.client.create('/raced', 0o644, true);
    await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const piece = Buffer.alloc(2000, 65 + i);
      await writer.write('/raced', i * 500, piece);
    }));
    await writer.close();
    const copies = await replicasOf('/raced');
    assert.equal(copies.length, 3);
    for (const copy of copies.slice(1)) assert.deepEqual(copy, copies[0], 'the replicas differ');
    // Every byte is one of the writes that covered it (which one depends on the order).
    copies[0].forEach((b, at) => {
      const covering = Array.from({ length: 20 }, (_, i) => i).filter((i) => at >= i * 500 && at < i * 500 + 2000);
      assert.ok(covering.some((i) => b === 65 + i), `byte ${at} = ${b}, from no write covering it`);
    });
    assert.equal(copies[0].length, 19 * 500 + 2000);
    assert.equal((await cluster.client.fsck('/')).healthy, true);
  });

  it('a first write not yet confirmed reads as a hole; confirmed, it is the data', async () => {
    await cluster.client.create('/f', 0o644, true);
    const { chunk } = await cluster.client.allocateChunk('/f', 0);
    const [primary, ...chain] = chunk.replicas;
    await cluster.peers.get(primary).write(chunk.handle, chunk.version, 0, Buffer.from('data'), chain, true);
    await cluster.client.setattr('/f', { size: 4 });
    assert.deepEqual(await cluster.readAll('/f'), Buffer.alloc(4), 'unconfirmed: never acknowledged, reads as zeros');
    await cluster.client.chunkWritten('/f', chunk);
    assert.equal((await cluster.readAll('/f')).toString(), 'data');
    await cluster.client.chunkWritten('/f', chunk); // repeated (a retry): harmless
    await expectErrno(cluster.client.chunkWritten('/f', { ...chunk, handle: chunk.handle + 1000 }), 'ESTALE');
  });

  it('refuses a write without the create flag to a replica that lacks the chunk', async () => {
    await cluster.client.create('/f', 0o644, true);
    const { chunk } = await cluster.client.allocateChunk('/f', 0);
    const [primary, ...chain] = chunk.replicas;
    await expectErrno(cluster.peers.get(primary).write(chunk.handle, chunk.version, 0, Buffer.from('x'), chain), 'ENOENT');
    assert.deepEqual(cluster.replicaFiles(chunk.handle), []);
  });

  it('loses nothing when the master is killed between allocation and the first write', async () => {
    await cluster.client.create('/m', 0o644, true);
    const { chunk } = await cluster.client.allocateChunk('/m', 0);
    await cluster.restartMaster();
    // The writer's lease outlives the master: its first write and confirmation go through.
    const [primary, ...chain] = chunk.replicas;
    await cluster.peers.get(primary).write(chunk.handle, chunk.version, 0, Buffer.from('kept'), chain, true);
    await cluster.client.chunkWritten('/m', chunk);
    await cluster.client.setattr('/m', { size: 4 });
    await cluster.restartMaster(); // the confirmation is in the log
    await cluster.until((r) => r.chunks!.total === 1 && r.chunks!.missing === 0 && r.chunks!.underReplicated === 0, 'replicas reported');
    assert.equal((await cluster.readAll('/m')).toString(), 'kept');

    // Killed again before a first write: the lease is gone with it, so the chunk is placed anew.
    await cluster.client.create('/n', 0o644, true);
    const old = await cluster.client.allocateChunk('/n', 0);
    await cluster.restartMaster();
    await cluster.until((r) => r.chunkservers.filter((c) => c.alive).length === 3, 'chunkservers registered again');
    const writer = new FileWriter(cluster.client, cluster.peers);
    await writer.write('/n', 0, Buffer.from('new'));
    await writer.close();
    assert.equal((await cluster.readAll('/n')).toString(), 'new');
    // The first allocator's write lands on a chunk no file has: its confirmation is refused.
    const [p2, ...c2] = old.chunk.replicas;
    await cluster.peers.get(p2).write(old.chunk.handle, old.chunk.version, 0, Buffer.from('OLD'), c2, true);
    await expectErrno(cluster.client.chunkWritten('/n', old.chunk), 'ESTALE');
    assert.equal((await cluster.readAll('/n')).toString(), 'new');
    // (The orphan replicas it left go once the chunkservers' next full report names them.)
  });

  it('places the chunk again when a chunkserver is killed between allocation and the first write', async () => {
    await cluster.client.create('/c', 0o644, true);
    const { chunk } = await cluster.client.allocateChunk('/c', 0);
    const victim = cluster.chunkservers.find((cs) => cs.address === chunk.replicas[1])!;
    await kill(victim);
    const writer = new FileWriter(cluster.client, cluster.peers);
    await writer.write('/c', 0, Buffer.from('survives')); // retried until the master sees it dead
    await writer.close();
    const [loc] = (await cluster.client.chunkLocations('/c', 0, 1)).chunks;
    assert.ok(!loc.replicas.includes(victim.address));
    assert.equal((await cluster.readAll('/c')).toString(), 'survives');
    for (const address of loc.replicas) {
      assert.equal((await cluster.peers.get(address).read(loc.handle, loc.version, 0, 100)).toString(), 'survives', address);
    }
  });
});
