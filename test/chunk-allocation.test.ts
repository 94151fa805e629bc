import { strict as assert } from 'assert';
import { FileWriter } from '../client/file-writer';
import { leaseRuns, MasterClient } from '../client/master-client';
import { MAX_CHUNKS_PER_FILE, maxFileSize } from '../server/common/file-size-limit';
import { expectErrno } from './helpers/errno';
import { kill, TestCluster } from './helpers/test-cluster';

/**
 * Chunk allocation with real processes: the master places replicas on distinct live
 * chunkservers, logs the file's chunk list (which survives a master crash) and never reuses a
 * handle; the first write creates the replicas there; with too few chunkservers it places what
 * it can, with none it fails with ENOSPC and changes nothing.
 */
describe('chunk allocation', function () {
  this.timeout(90_000);
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start('alloc', 3, ['--chunk-size', String(1 << 20), '--replication', '3', '--dead-timeout', '1.5']);
  });
  after(async () => cluster?.stop());

  /** One byte at the start of chunk `index`, through the client library (allocates it). */
  async function writeChunk(path: string, index: number): Promise<void> {
    const writer = new FileWriter(cluster.client, cluster.peers);
    await writer.write(path, index * (1 << 20), Buffer.from('x'));
    await writer.close();
  }

  /** A new file holding `bytes`, written and closed through the client library. */
  async function writeFile(path: string, bytes: Buffer): Promise<void> {
    await cluster.client.create(path, 0o644, true);
    const writer = new FileWriter(cluster.client, cluster.peers);
    await writer.write(path, 0, bytes);
    await writer.close();
  }

  /** `bytes` at the start of `path` under the lease on `chunk` (its primary, then the chain), then released. */
  async function writeUnderLease(path: string, chunk: { handle: number; version: number; replicas: string[] }, bytes: Buffer): Promise<void> {
    const [primary, ...chain] = chunk.replicas;
    await cluster.peers.get(primary).write(chunk.handle, chunk.version, 0, bytes, chain);
    await cluster.client.releaseLease(path, 0, chunk.version);
  }

  /**
   * Until the replication monitor has put `path`'s chunk 0 back on `address`: every replica the
   * master lists meanwhile must hold `bytes`.
   */
  async function untilHealed(path: string, bytes: Buffer, address: string): Promise<void> {
    for (let waited = 0; ; waited += 100) {
      const [now] = (await cluster.client.chunkLocations(path, 0, 1)).chunks;
      for (const replica of now.replicas) {
        const held = await cluster.peers.get(replica).read(now.handle, now.version, 0, bytes.length);
        assert.ok(held.equals(bytes), `replica ${replica} (version ${now.version}) serves bytes from before a write it missed`);
      }
      if (now.replicas.includes(address)) return;
      assert.ok(waited < 30_000, `the chunk never came back to ${address}: ${JSON.stringify(now)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('places three replicas on distinct chunkservers, and the first write creates them there', async () => {
    await cluster.client.create('/f', 0o644, true);
    const { chunk, chunkSize, leaseEnds, createReplicas } = await cluster.client.allocateChunk('/f', 0);
    assert.equal(chunkSize, 1 << 20);
    assert.equal(chunk.replicas.length, 3);
    assert.deepEqual([...chunk.replicas].sort(), cluster.chunkservers.map((c) => c.address).sort());
    assert.ok(createReplicas && leaseEnds !== null && leaseRuns(leaseEnds, 0), 'a new chunk comes leased, its replicas to be created');
    assert.deepEqual(cluster.replicaFiles(chunk.handle), [], 'no chunkserver was asked to create anything');
    const again = await cluster.client.allocateChunk('/f', 0);
    assert.equal(again.chunk.handle, chunk.handle, 'allocating it again while its lease lasts answers it');

    await writeChunk('/f', 0);
    assert.equal(cluster.replicaFiles(chunk.handle).length, 3, 'the first write created every replica');
    const [loc] = (await cluster.client.chunkLocations('/f', 0, 1)).chunks;
    assert.deepEqual([loc.handle, loc.version, [...loc.replicas].sort()], [chunk.handle, 1, [...chunk.replicas].sort()]);
    // A written chunk comes with a write lease: a new grant, which moved every replica on.
    const written = await cluster.client.allocateChunk('/f', 0);
    assert.deepEqual([written.chunk.handle, written.chunk.version, written.createReplicas], [chunk.handle, 2, false]);
    assert.ok(written.leaseEnds !== null && leaseRuns(written.leaseEnds, 0), 'the lease runs');
    assert.deepEqual([...written.chunk.replicas].sort(), [...chunk.replicas].sort());
    const [moved] = (await cluster.client.chunkLocations('/f', 0, 1)).chunks;
    assert.equal(moved.version, 2, 'the log has the new version');
    // While the lease lasts, asking again answers it as it is: no second bump.
    const current = await cluster.client.allocateChunk('/f', 0);
    assert.deepEqual([current.chunk.version, current.chunk.replicas[0]], [2, written.chunk.replicas[0]]);
    assert.ok(current.leaseEnds !== null && leaseRuns(current.leaseEnds, 0));
  });

  it('keeps holes as handle 0 and answers locations by index', async () => {
    await writeChunk('/f', 2);
    const { chunks } = await cluster.client.chunkLocations('/f', 0, 10);
    assert.deepEqual(chunks.map((c) => [c.index, c.handle === 0, c.replicas.length]), [[0, false, 3], [1, true, 0], [2, false, 3]]);
    const r = await cluster.client.report();
    assert.deepEqual(r.chunks, { total: 2, underReplicated: 0, overReplicated: 0, corrupt: 0, missing: 0 });
  });

  it('refuses directories, missing files and bad indexes with exact errnos', async () => {
    await cluster.client.mkdir('/dir', 0o755);
    await expectErrno(cluster.client.allocateChunk('/dir', 0), 'EISDIR');
    await expectErrno(cluster.client.allocateChunk('/missing', 0), 'ENOENT');
    await expectErrno(cluster.client.allocateChunk('/f', -1), 'EINVAL');
    await expectErrno(cluster.client.chunkLocations('/f', 0.5, 1), 'EINVAL');
  });

  it('refuses a chunk or a size past the largest file with EFBIG, logging nothing', async () => {
    await cluster.client.create('/largest', 0o644, true);
    const txid = (await cluster.client.status()).txid;
    await expectErrno(cluster.client.allocateChunk('/largest', MAX_CHUNKS_PER_FILE), 'EFBIG');
    await expectErrno(cluster.client.allocateChunk('/largest', 2 ** 52), 'EFBIG');
    await expectErrno(cluster.client.setattr('/largest', { size: maxFileSize(1 << 20) + 1 }), 'EFBIG');
    await expectErrno(cluster.client.setattr('/largest', { size: 2 ** 53 - 1, growOnly: true }), 'EFBIG');
    assert.equal((await cluster.client.status()).txid, txid, 'nothing logged');
    await cluster.client.allocateChunk('/largest', MAX_CHUNKS_PER_FILE - 1);
    assert.equal((await cluster.client.setattr('/largest', { size: maxFileSize(1 << 20) })).size, maxFileSize(1 << 20));
  });

  it('keeps chunk lists across a master crash, and never reuses a handle', async () => {
    const before = (await cluster.client.chunkLocations('/f', 0, 10)).chunks;
    await cluster.restartMaster();
    await cluster.until((r) => r.chunkservers.filter((c) => c.alive && c.chunks === 2).length === 3, 'full reports after the restart');
    assert.deepEqual((await cluster.client.chunkLocations('/f', 0, 10)).chunks.map((c) => [c.handle, c.version, c.replicas.length]),
      before.map((c) => [c.handle, c.version, c.replicas.length]));
    const { chunk } = await cluster.client.allocateChunk('/f', 3);
    assert.ok(chunk.handle > Math.max(...before.map((c) => c.handle)), 'a fresh handle after the restart');
    await writeChunk('/f', 3);
  });

  it('a grow-only size never shrinks a file nor drops its chunks; a plain size does; both replay alike', async () => {
    await cluster.client.create('/grow', 0o644, true);
    const first = new FileWriter(cluster.client, cluster.peers);
    // Another writer's chunk 3 lands first and records its end; a slower writer then records a smaller one.
    await first.write('/grow', 3 * (1 << 20) + 10, Buffer.from('late chunk'));
    const before = await cluster.client.getattr('/grow');
    await new Promise((r) => setTimeout(r, 5));
    const after = await cluster.client.setattr('/grow', { size: 100, growOnly: true });
    assert.equal(after.size, 3 * (1 << 20) + 20, 'the size did not shrink');
    assert.ok(after.mtimeMs > before.mtimeMs, 'mtime set: the writer wrote');
    assert.equal((await cluster.client.setattr('/grow', { size: 5 * (1 << 20), growOnly: true })).size, 5 * (1 << 20));
    await cluster.restartMaster();
    assert.equal((await cluster.client.getattr('/grow')).size, 5 * (1 << 20), 'replayed');
    const { chunks } = await cluster.client.chunkLocations('/grow', 0, 10);
    assert.deepEqual(chunks.map((c) => c.handle !== 0), [false, false, false, true], 'chunk 3 kept');
    await first.close();
    // A plain size is a truncate: chunks wholly past it go.
    assert.equal((await cluster.client.setattr('/grow', { size: 100 })).size, 100);
    assert.deepEqual((await cluster.client.chunkLocations('/grow', 0, 10)).chunks.filter((c) => c.handle !== 0), []);
  });

  it('a lease that lost a replica is granted anew: that replica, back with the bytes it missed, is stale and serves nothing', async () => {
    const size = 256 << 10;
    const fresh = Buffer.alloc(size, 'n');
    await cluster.until((r) => r.chunkservers.filter((c) => c.alive).length === 3, 'every chunkserver alive');
    await writeFile('/late', Buffer.alloc(size, 'o'));
    const granted = await cluster.client.allocateChunk('/late', 0);
    assert.equal(granted.chunk.replicas.length, 3);
    // Stopped, not killed: once declared dead it comes back with the replica as it was.
    const stopped = cluster.chunkservers.find((c) => c.address === granted.chunk.replicas[2])!;
    stopped.kill('SIGSTOP');
    try {
      await cluster.until((r) => r.chunkservers.filter((c) => c.alive).length === 2, 'the stopped chunkserver declared dead');
      const again = await cluster.client.allocateChunk('/late', 0);
      assert.ok(again.chunk.version > granted.chunk.version, `the lease is granted anew, not answered at version ${again.chunk.version} without a replica`);
      assert.deepEqual([...again.chunk.replicas].sort(), granted.chunk.replicas.slice(0, 2).sort());
      await writeUnderLease('/late', again.chunk, fresh);
    } finally {
      stopped.kill('SIGCONT');
    }
    await untilHealed('/late', fresh, stopped.address);
  });

  it('a new grant leaves out the replicas a writer failed on, while others remain: those are stale', async () => {
    const bytes = Buffer.alloc(64 << 10, 'f');
    await writeFile('/failed', bytes);
    const [before] = (await cluster.client.chunkLocations('/failed', 0, 1)).chunks;
    const failed = before.replicas[1];
    const granted = await cluster.client.allocateChunk('/failed', 0, [failed]);
    assert.equal(granted.chunk.version, before.version + 1);
    assert.deepEqual([...granted.chunk.replicas].sort(), before.replicas.filter((a) => a !== failed).sort(), 'a full server, say, answers: it is not asked');
    await writeUnderLease('/failed', granted.chunk, Buffer.alloc(64 << 10, 'g'));
    await untilHealed('/failed', Buffer.alloc(64 << 10, 'g'), failed);
  });

  it('a writer overtaken by another lease (ESTALE) leases again without leaving a replica out', async () => {
    await writeFile('/shared', Buffer.alloc(64 << 10, 's'));
    const holder = new FileWriter(cluster.client, cluster.peers);
    await holder.write('/shared', 0, Buffer.alloc(10, 'h')); // holds the lease from here on
    const [held] = (await cluster.client.chunkLocations('/shared', 0, 1)).chunks;
    // Another writer names one replica failed: a new lease, the version moved, without it.
    const other = await cluster.client.allocateChunk('/shared', 0, [held.replicas[2]]);
    assert.equal(other.chunk.replicas.length, 2);
    // The holder's next write meets the new version (ESTALE): no replica of its to avoid.
    await holder.write('/shared', 0, Buffer.alloc(10, 'H'));
    await holder.close();
    const [after] = (await cluster.client.chunkLocations('/shared', 0, 1)).chunks;
    assert.ok(after.replicas.length >= 2, `the holder's retry left a replica out: ${JSON.stringify(after)}`);
    await untilHealed('/shared', Buffer.concat([Buffer.alloc(10, 'H'), Buffer.alloc((64 << 10) - 10, 's')]), held.replicas[2]);
  });

  it('a grant that a replica does not answer moves the others on once more: the version that replica may take late is stale', async () => {
    const size = 64 << 10;
    const fresh = Buffer.alloc(size, 'm');
    await cluster.until((r) => r.chunkservers.filter((c) => c.alive).length === 3, 'every chunkserver alive');
    await writeFile('/slow', Buffer.alloc(size, 'o'));
    const [before] = (await cluster.client.chunkLocations('/slow', 0, 1)).chunks;
    // Stopped and still counted alive: the grant's request to it waits, unanswered, until the
    // master gives up on it (its answer could as well come too late from a slow disk).
    const stopped = cluster.chunkservers.find((c) => c.address === before.replicas[2])!;
    stopped.kill('SIGSTOP');
    // The grant waits as long as a client's default deadline for the stopped one's answer.
    const patient = new MasterClient(cluster.master.address, { deadlineMs: 30_000 });
    try {
      const granted = await patient.allocateChunk('/slow', 0);
      assert.equal(granted.chunk.version, before.version + 2, 'the replicas that answered moved on twice');
      assert.deepEqual([...granted.chunk.replicas].sort(), before.replicas.slice(0, 2).sort());
      await writeUnderLease('/slow', granted.chunk, fresh);
    } finally {
      stopped.kill('SIGCONT');
      patient.close();
    }
    await untilHealed('/slow', fresh, stopped.address);
  });

  it('a lease granted after a chunkserver came back on its address moves every replica, that one too', async () => {
    await cluster.until((r) => r.chunkservers.filter((c) => c.alive).length === 3, 'every chunkserver registered with the restarted master');
    await cluster.client.create('/back', 0o644, true);
    await writeChunk('/back', 0);
    // A grant before the restart: the master has a data stream to the chunkserver's old process.
    const first = await cluster.client.allocateChunk('/back', 0);
    await cluster.client.releaseLease('/back', 0, first.chunk.version);
    const address = cluster.chunkservers[0].address;
    await kill(cluster.chunkservers[0]);
    await cluster.restartChunkserver(0, { sameAddress: true });
    for (let waited = 0; ; waited += 50) {
      const [c] = (await cluster.client.chunkLocations('/back', 0, 1)).chunks;
      if (c.replicas.includes(address) && c.version === first.chunk.version) break;
      assert.ok(waited < 20_000, `the restarted chunkserver never reported the chunk: ${JSON.stringify(c)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const next = await cluster.client.allocateChunk('/back', 0);
    assert.equal(next.chunk.version, first.chunk.version + 1);
    assert.deepEqual([...next.chunk.replicas].sort(), [...first.chunk.replicas].sort(), 'every replica took the new version');
    await cluster.client.releaseLease('/back', 0, next.chunk.version);
    // A writer whose data stream to it predates the restart: its connection is refused, so the
    // port is asked again; named failed instead, the replica would be left stale.
    await writeChunk('/back', 0);
    const [after] = (await cluster.client.chunkLocations('/back', 0, 1)).chunks;
    assert.ok(after.replicas.includes(address), `the restarted chunkserver has the latest version: ${JSON.stringify(after)}`);
  });

  it('places what it can with too few chunkservers, and fails with ENOSPC (logging nothing) with none', async () => {
    const chunks = (await cluster.client.report()).chunks!.total;
    for (const cs of cluster.chunkservers.slice(1)) await kill(cs);
    await cluster.until((r) => r.chunkservers.filter((c) => c.alive).length === 1, 'two chunkservers dead');
    const logged = cluster.master.stderr().length;
    await cluster.client.create('/g', 0o644, true);
    const { chunk } = await cluster.client.allocateChunk('/g', 0);
    assert.deepEqual(chunk.replicas, [cluster.chunkservers[0].address]);
    await writeChunk('/g', 0);
    // Reported, but not once per new chunk (with a server down, that is once per new file).
    for (let i = 0; i < 10; i++) {
      await cluster.client.create(`/short${i}`, 0o644, true);
      await cluster.client.allocateChunk(`/short${i}`, 0);
    }
    // (None, if an earlier test's short placement was reported less than 10 s ago.)
    const reports = cluster.master.stderr().slice(logged).match(/has 1 of 3 replicas/g) ?? [];
    assert.ok(reports.length <= 1, cluster.master.stderr().slice(logged));
    const r = await cluster.client.report();
    assert.equal(r.chunks!.total, chunks + 1, 'chunks never written are no chunks yet');
    assert.equal(r.chunks!.underReplicated, chunks + 1, `every chunk now has one live replica of three: ${JSON.stringify(r.chunks)}`);

    await kill(cluster.chunkservers[0]);
    await cluster.until((x) => x.chunkservers.every((c) => !c.alive), 'all chunkservers dead');
    const txid = (await cluster.client.status()).txid;
    await expectErrno(cluster.client.allocateChunk('/g', 1), 'ENOSPC');
    assert.equal((await cluster.client.status()).txid, txid, 'nothing logged');
    assert.equal((await cluster.client.report()).chunks!.missing, chunks + 1);
  });
});

describe('a master restarting', function () {
  this.timeout(60_000);
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start('restarting', 3, ['--chunk-size', String(1 << 20), '--replication', '3', '--dead-timeout', '4']);
  });
  after(async () => cluster?.stop());

  it('waits for its chunkservers to register before placing, leasing or locating chunks, rather than failing or leaving replicas behind', async () => {
    await cluster.client.create('/kept', 0o644, true);
    const writer = new FileWriter(cluster.client, cluster.peers);
    await writer.write('/kept', 0, Buffer.alloc(64 << 10, 'k'));
    await writer.close();
    await cluster.client.create('/new', 0o644, true);
    // Stopped chunkservers register only once they run again, after the master is up.
    await cluster.restartMaster(async () => cluster.chunkservers.forEach((cs) => cs.kill('SIGSTOP')));
    let located, allocated, leased;
    try {
      located = cluster.client.chunkLocations('/kept', 0, 1);
      allocated = cluster.client.allocateChunk('/new', 0);
      leased = cluster.client.allocateChunk('/kept', 0);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      cluster.chunkservers.forEach((cs) => cs.kill('SIGCONT'));
    }
    assert.ok((await located).chunks[0].replicas.length > 0, 'located where a replica has reported');
    assert.equal((await allocated).chunk.replicas.length, 3, 'a new chunk placed on three chunkservers');
    const lease = await leased;
    assert.equal(lease.chunk.replicas.length, 3, 'a lease that moved every replica to its version');
    await cluster.client.releaseLease('/kept', 0, lease.chunk.version);
    assert.equal((await cluster.client.report()).chunks!.underReplicated, 0);
  });
});
