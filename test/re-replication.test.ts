import { strict as assert } from 'assert';
import { createHash, randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { FileWriter } from '../client/file-writer';
import type { ClusterReport } from '../client/master-client';
import { flipChunkByte } from './helpers/corrupt';
import { kill, TestCluster } from './helpers/test-cluster';

const MiB = 1 << 20;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Self-healing with real processes: a chunkserver killed with SIGKILL -> after the dead timeout
 * every chunk is back at three live replicas on the others, data intact; the chunkserver
 * restarted later -> its stale replicas (versions that missed writes) and surplus ones go.
 */
describe('self-healing: dead chunkservers, failed disks, corrupt replicas', function () {
  this.timeout(120_000);
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start('rerep', 4, ['--chunk-size', String(MiB), '--dead-timeout', '1.5']);
  });
  after(async () => cluster?.stop());

  const healthy = (r: ClusterReport) => r.chunks!.total > 0 && r.chunks!.underReplicated + r.chunks!.overReplicated + r.chunks!.missing === 0;
  /** Every chunk of the file has three listed replicas, each serving exactly the expected bytes. */
  const everyReplicaGood = async (p: string, data: Buffer): Promise<boolean> => {
    const { chunks, chunkSize } = await cluster.client.chunkLocations(p, 0, 1000);
    for (const c of chunks) {
      const want = data.subarray(c.index * chunkSize, (c.index + 1) * chunkSize);
      if (c.replicas.length !== 3) return false;
      for (const r of c.replicas) {
        const got = await cluster.peers.get(r).read(c.handle, c.version, 0, chunkSize).catch(() => null);
        if (!got || !got.equals(want)) return false;
      }
    }
    return true;
  };
  const eventually = async (cond: () => Promise<boolean>, what: string): Promise<void> => {
    const deadline = Date.now() + 30_000;
    while (!(await cond())) {
      if (Date.now() > deadline) assert.fail(`${what} did not happen`);
      await new Promise((res) => setTimeout(res, 200));
    }
  };

  it('re-creates the replicas of a failed data directory while its chunkserver goes on serving', async () => {
    // A fifth chunkserver with two data directories, one of which will fail.
    const dirs = [path.join(cluster.root, 'cs4a'), path.join(cluster.root, 'cs4b')];
    const two = await cluster.startChunkserver(dirs);
    await cluster.until((r) => r.chunkservers.filter((c) => c.alive).length === 5, 'five chunkservers alive');
    const writer = new FileWriter(cluster.client, cluster.peers);
    const data = randomBytes(8 * MiB);
    await cluster.client.create('/disks', 0o644, true);
    await writer.write('/disks', 0, data);
    await writer.close();
    await cluster.until(healthy, 'chunks at three replicas');
    const onA = fs.readdirSync(path.join(dirs[0], 'chunks'), { recursive: true }).filter((f) => String(f).endsWith('.chunk')).length;
    assert.ok(onA > 0, 'the new chunkserver got replicas in the directory that will fail');
    fs.rmSync(dirs[0], { recursive: true, force: true });
    // Until the chunkserver reports the loss, the master lists replicas that no longer exist.
    await eventually(() => everyReplicaGood('/disks', data), 'lost replicas reported and re-created');
    const r = await cluster.client.report();
    assert.ok(healthy(r), JSON.stringify(r.chunks));
    assert.ok(r.chunkservers.find((c) => c.address === two.address)!.alive, 'the chunkserver goes on with its other directory');
    assert.equal(sha(await cluster.readAll('/disks')), sha(data));
  });

  it('reads around a corrupt replica, and replaces it with a good copy', async () => {
    const writer = new FileWriter(cluster.client, cluster.peers);
    const data = randomBytes(2 * MiB);
    await cluster.client.create('/rot', 0o644, true);
    await writer.write('/rot', 0, data);
    await writer.close();
    await cluster.until(healthy, 'chunks at three replicas');
    const [chunk] = (await cluster.client.chunkLocations('/rot', 0, 1)).chunks;
    const bad = cluster.peers.byReadLoad(chunk.replicas, chunk.handle)[0]; // the one a read tries first
    const file = cluster.replicaFiles(chunk.handle).find((r) => r.cs.address === bad)?.file;
    assert.ok(file, `the replica on ${bad} is on disk`);
    await flipChunkByte(file, 1000);
    // The replica read first is the rotten one: the read moves on to the next.
    assert.equal(sha(await cluster.readAll('/rot')), sha(data));
    await eventually(async () => (await everyReplicaGood('/rot', data)) && (await cluster.client.report()).chunks!.corrupt === 0,
      'the corrupt replica replaced by a good copy, and deleted');
  });

  it('copies every chunk of a dead chunkserver to the others, then cleans up when it returns', async () => {
    const writer = new FileWriter(cluster.client, cluster.peers);
    let data = randomBytes(6 * MiB + 100);
    await cluster.client.create('/big', 0o644, true);
    await writer.write('/big', 0, data);
    await writer.close();
    await cluster.until(healthy, 'seven chunks at three replicas');

    // The chunkserver holding the most replicas dies (one of the four started with a single
    // data directory cs<n>, so that startCs(n) brings the same one back).
    const r0 = await cluster.client.report();
    const originals = new Set(cluster.chunkservers.slice(0, 4).map((c) => c.address));
    const fullest = r0.chunkservers.filter((c) => c.alive && originals.has(c.address)).reduce((a, b) => (b.chunks > a.chunks ? b : a));
    const victim = cluster.chunkservers.findIndex((c) => c.address === fullest.address);
    await kill(cluster.chunkservers[victim]);
    const r1 = await cluster.until((r) => !r.chunkservers.find((c) => c.id === fullest.id)!.alive && healthy(r),
      'all chunks back at three live replicas');
    assert.equal(r1.chunkservers.filter((c) => c.alive).reduce((n, c) => n + c.chunks, 0), 3 * r1.chunks!.total);
    assert.equal(sha(await cluster.readAll('/big')), sha(data), 'data intact after re-replication');
    const check = await cluster.client.fsck('/');
    assert.equal(check.healthy, true);
    assert.deepEqual(check.unhealthy, []);

    // A write while it is down: its replicas of that chunk are now stale by version.
    const patch = randomBytes(1000);
    await writer.write('/big', 10, patch);
    await writer.close();
    data = Buffer.concat([data.subarray(0, 10), patch, data.subarray(10 + patch.length)]);

    await cluster.restartChunkserver(victim);
    const r2 = await cluster.until((r) => {
      const back = r.chunkservers.find((c) => c.id === fullest.id)!;
      const total = r.chunkservers.filter((c) => c.alive).reduce((n, c) => n + c.chunks, 0);
      return back.alive && healthy(r) && total === 3 * r.chunks!.total;
    }, 'stale and surplus replicas removed after the chunkserver returned');
    assert.equal(r2.chunks!.corrupt, 0);
    assert.equal(sha(await cluster.readAll('/big')), sha(data), 'data intact, the patch included');
  });
});

describe('self-healing with as many chunkservers as replicas', function () {
  this.timeout(120_000);
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start('rerep3', 3, ['--chunk-size', String(MiB), '--dead-timeout', '1.5']);
  });
  after(async () => cluster?.stop());

  it('replaces a corrupt replica on the server that held it, the only place a copy can go', async () => {
    const writer = new FileWriter(cluster.client, cluster.peers);
    const data = randomBytes(MiB + 4096);
    await cluster.client.create('/rot3', 0o644, true);
    await writer.write('/rot3', 0, data);
    await writer.close();
    const [chunk] = (await cluster.client.chunkLocations('/rot3', 0, 1)).chunks;
    assert.equal(chunk.replicas.length, 3);
    const bad = cluster.peers.byReadLoad(chunk.replicas, chunk.handle)[0];
    const file = cluster.replicaFiles(chunk.handle).find((r) => r.cs.address === bad)!.file;
    await flipChunkByte(file, 1000);
    assert.equal(sha(await cluster.readAll('/rot3')), sha(data)); // finds the rot, reads around it
    // Healthy once more: three replicas on the same three servers, each serving the data.
    const allGood = async (): Promise<boolean> => {
      const now = (await cluster.client.chunkLocations('/rot3', 0, 1)).chunks[0];
      if ([...now.replicas].sort().join() !== [...chunk.replicas].sort().join()) return false;
      for (const r of now.replicas) {
        const got = await cluster.peers.get(r).read(now.handle, now.version, 0, MiB).catch(() => null);
        if (!got?.equals(data.subarray(0, MiB))) return false;
      }
      return (await cluster.client.report()).chunks!.corrupt === 0;
    };
    const deadline = Date.now() + 30_000;
    while (!(await allGood())) {
      assert.ok(Date.now() < deadline, 'the corrupt replica was not replaced');
      await new Promise((res) => setTimeout(res, 200));
    }
  });
});

describe('re-replication pace: copies do not wait for the next pass', function () {
  this.timeout(120_000);
  const INTERVAL_S = 8;
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start('rerep-pace', 4,
      ['--chunk-size', String(64 * 1024), '--dead-timeout', '1', '--replication-interval', String(INTERVAL_S)]);
  });
  after(async () => cluster?.stop());

  it('a dead chunkserver\'s many small chunks are copied back as fast as copies end, not a few per pass', async () => {
    const writer = new FileWriter(cluster.client, cluster.peers);
    const data = randomBytes(96 * 64 * 1024);
    await cluster.client.create('/many', 0o644, true);
    await writer.write('/many', 0, data);
    await writer.close();
    const healthy = (r: ClusterReport) => r.chunks!.total === 96 && r.chunks!.underReplicated + r.chunks!.missing === 0;
    await cluster.until(healthy, 'the chunks at three replicas');
    const r0 = await cluster.client.report();
    const fullest = r0.chunkservers.reduce((a, b) => (b.chunks > a.chunks ? b : a));
    await kill(cluster.chunkservers.find((c) => c.address === fullest.address)!);
    // About 70 chunks to copy, with 3 live servers and 2 copies per server: 3 at a time. Started
    // only by passes, that is over 20 passes; five passes' time is plenty when each copy that
    // ends starts the next.
    await cluster.until((r) => !r.chunkservers.find((c) => c.id === fullest.id)!.alive && healthy(r),
      `every chunk back at three live replicas within ${5 * INTERVAL_S} s`, 5 * INTERVAL_S * 1000);
    assert.equal(sha(await cluster.readAll('/many')), sha(data));
  });
});
