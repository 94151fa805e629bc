import { strict as assert } from 'assert';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChunkClientPool } from '../client/chunk-client';
import { FileReader } from '../client/file-reader';
import { FileWriter } from '../client/file-writer';
import type { LocalChunkReads } from '../client/local-chunk-reads';
import { OpenChunkFiles } from '../server/chunkserver/open-chunk-files';
import { bootId, dirIdentity } from '../server/common/host-identity';
import { modelWrite } from './helpers/chunk-model';
import { flipChunkByte } from './helpers/corrupt';
import { expectErrno } from './helpers/errno';
import { prng } from './helpers/prng';
import { kill, TestCluster } from './helpers/test-cluster';

const KiB = 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = 1024 * KiB;

/**
 * Short-circuit reads (client/local-chunk-reads.ts) on a real cluster: a client with localReads
 * reads chunk files itself, checked against what was written; anything it cannot vouch for
 * (corruption, another version, a directory it does not see as the chunkserver does) goes
 * through the chunkserver, which then does what it always did.
 */
describe('short-circuit reads: a client beside the chunkservers reads their chunk files', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let pool: ChunkClientPool;
  let local: LocalChunkReads;
  let data: Buffer;
  const file = '/big';

  before(async () => {
    cluster = await TestCluster.start('local-reads', 4, ['--chunk-size', String(MiB), '--replication', '3', '--dead-timeout', '1.5']);
    data = randomBytes(3 * MiB + 12345);
    await cluster.client.create(file, 0o644, true);
    await new FileWriter(cluster.client, cluster.peers).write(file, 0, data);
    pool = new ChunkClientPool({ localReads: true });
    local = pool.local!;
  });
  after(async () => {
    pool?.closeAll();
    await cluster?.stop();
  });

  const reader = (): FileReader => new FileReader(cluster.client, pool);
  const chunk = async (p: string, index: number) => (await cluster.client.chunkLocations(p, index, 1)).chunks[0];

  /**
   * Until every one of `replicas` is read through its files here. A chunkserver's answer about
   * its files counts for a second (on a loaded machine, less than the time between two checks);
   * asking (isLocal does, in the background) makes it fresh again.
   */
  async function untilLocal(replicas: string[]): Promise<void> {
    for (let waited = 0; !replicas.every((r) => pool.get(r).isLocal); waited += 20) {
      assert.ok(waited < 5000, `never local: ${replicas.filter((r) => !pool.get(r).isLocal).join(', ')}`);
      await sleep(20);
    }
  }

  it('reads a whole file from the chunk files, none of it through a chunkserver', async () => {
    // The first read of each replica goes through its chunkserver, which is asked meanwhile
    // where its files are.
    for await (const piece of reader().pieces(file)) assert.ok(piece.length > 0);
    await untilLocal(cluster.chunkservers.map((c) => c.address));
    const before = { ...local.stats };
    const parts: Buffer[] = [];
    for await (const piece of reader().pieces(file, 256 * KiB)) parts.push(piece);
    assert.ok(Buffer.concat(parts).equals(data));
    assert.equal(local.stats.declined, before.declined);
    assert.equal(local.stats.served - before.served, Math.ceil(data.length / (256 * KiB)));
  });

  it('answers ranges as the chunkserver does: across blocks, cut at the end, empty past it', async () => {
    const rand = prng(7);
    const c = await chunk(file, 3); // the 12,345-byte tail chunk
    const tail = data.subarray(3 * MiB);
    const network = new ChunkClientPool();
    try {
      for (let i = 0; i < 40; i++) {
        const c0 = await chunk(file, i % 3);
        const offset = Math.floor(rand() * MiB);
        const length = 1 + Math.floor(rand() * 200 * KiB);
        const got = await pool.get(c0.replicas[i % 3]).read(c0.handle, c0.version, offset, length);
        const want = data.subarray((i % 3) * MiB + offset, (i % 3) * MiB + Math.min(offset + length, MiB));
        assert.ok(got.equals(want), `chunk ${i % 3} [${offset}, +${length})`);
      }
      for (const [offset, length] of [[0, 64 * KiB], [12000, 1000], [12345, 10], [20000, 10]]) {
        const here = await pool.get(c.replicas[0]).read(c.handle, c.version, offset, length);
        const there = await network.get(c.replicas[0]).read(c.handle, c.version, offset, length);
        assert.ok(here.equals(there), `tail [${offset}, +${length}) as the chunkserver answers it`);
        assert.ok(here.equals(tail.subarray(offset, offset + length)));
      }
    } finally {
      network.closeAll();
    }
  });

  it('sees each write acknowledged before it, overwrites and growth included', async () => {
    const p = '/rewritten';
    await cluster.client.create(p, 0o644, true);
    const writer = new FileWriter(cluster.client, cluster.peers);
    const rand = prng(3);
    let model: Buffer = Buffer.alloc(0);
    for (let step = 0; step < 12; step++) {
      const offset = Math.floor(rand() * (model.length + 1));
      const bytes = randomBytes(1 + Math.floor(rand() * 300 * KiB));
      await writer.write(p, offset, bytes);
      model = modelWrite(model, offset, bytes);
      const parts: Buffer[] = [];
      for await (const piece of reader().pieces(p)) parts.push(piece);
      assert.ok(Buffer.concat(parts).equals(model), `after write ${step} (${offset}+${bytes.length})`);
    }
    await writer.close();
  });

  it('makes a small read alone on the main thread, a large one or one beside it through the thread pool, each right', async () => {
    const c = await chunk(file, 2);
    const cs = cluster.chunkservers.find((s) => s.address === c.replicas[0])!;
    const dirs = cluster.dataDirsOf(cs);
    const want = (offset: number, length: number): Buffer => data.subarray(2 * MiB + offset, 2 * MiB + offset + length);
    const read = (offset: number, length: number) => local.read(dirs, c.handle, c.version, offset, length);
    const served = (): { served: number; blocking: number } => ({ served: local.stats.served, blocking: local.stats.blocking });
    // After a small read that took over 5 ms (a loaded machine), the next goes through the
    // thread pool, and one that is quick there lets the one after it block again.
    let before = served();
    for (let attempt = 0; local.stats.blocking === before.blocking; attempt++) {
      assert.ok(attempt < 5, 'no small read was made on the main thread');
      assert.ok((await read(5000 + attempt, 4 * KiB))!.equals(want(5000 + attempt, 4 * KiB)));
    }
    before = served();
    assert.ok((await read(0, MiB))!.equals(want(0, MiB)));
    assert.deepEqual(served(), { served: before.served + 1, blocking: before.blocking }, 'a large read: the thread pool');
    before = served();
    const [large, small] = await Promise.all([read(0, MiB), read(70 * KiB, 100)]);
    assert.ok(large!.equals(want(0, MiB)) && small!.equals(want(70 * KiB, 100)));
    assert.deepEqual(served(), { served: before.served + 2, blocking: before.blocking }, 'a small read beside a large one: the thread pool');
  });

  it('declines a version its file does not hold: the chunkserver answers ESTALE', async () => {
    const c = await chunk(file, 0);
    const before = local.stats.declined;
    await expectErrno(pool.get(c.replicas[0]).read(c.handle, c.version + 1, 0, 10), 'ESTALE');
    assert.equal(local.stats.declined, before + 1);
  });

  it('declines a read cut by the end while a checksum past the end shows a growing write under way', async () => {
    const p = '/growing';
    const bytes = randomBytes(MiB / 2); // a whole number of blocks
    await cluster.client.create(p, 0o644, true);
    await new FileWriter(cluster.client, cluster.peers).write(p, 0, bytes);
    const c = await chunk(p, 0);
    const replica = cluster.replicaFiles(c.handle).find((r) => r.cs.address === c.replicas[0])!;
    const read = (offset: number, length: number) => pool.get(c.replicas[0]).read(c.handle, c.version, offset, length);
    assert.ok((await read(MiB / 2 - 1000, 64 * KiB)).equals(bytes.subarray(MiB / 2 - 1000)));
    // What a write growing the chunk past its end leaves while its header has not landed: new
    // checksums (and data) past the old end, under the old size.
    const fd = fs.openSync(replica.file, 'r+');
    const sum = Buffer.alloc(4);
    sum.writeUInt32LE(0x1234abcd);
    fs.writeSync(fd, sum, 0, 4, 8192 + 4 * (MiB / 2 / (64 * KiB)));
    fs.closeSync(fd);
    await untilLocal([c.replicas[0]]);
    const before = { ...local.stats };
    assert.ok((await read(MiB / 2 - 1000, 64 * KiB)).equals(bytes.subarray(MiB / 2 - 1000)), 'the chunkserver answers');
    assert.equal(local.stats.declined, before.declined + 1);
    assert.ok((await read(0, 64 * KiB)).equals(bytes.subarray(0, 64 * KiB)), 'a read the end does not cut');
    assert.equal(local.stats.served, before.served + 1);
  });

  it('declines a corrupt block: the chunkserver refuses and reports it, the master replaces the replica, reads stay right', async () => {
    const c = await chunk(file, 1);
    const victim = c.replicas[0];
    const replica = cluster.replicaFiles(c.handle).find((r) => r.cs.address === victim)!;
    await flipChunkByte(replica.file, 70 * KiB); // block 1
    const before = local.stats.declined;
    await assert.rejects(pool.get(victim).read(c.handle, c.version, 65 * KiB, 10), /checksum mismatch/);
    assert.equal(local.stats.declined, before + 1);
    // Blocks the rot does not touch still read from the file.
    assert.ok((await pool.get(victim).read(c.handle, c.version, 0, 100)).equals(data.subarray(MiB, MiB + 100)));
    for (const deadline = Date.now() + 30_000; (await chunk(file, 1)).replicas.includes(victim); await sleep(100)) {
      assert.ok(Date.now() < deadline, 'the master replaces the corrupt replica');
    }
    const parts: Buffer[] = [];
    for await (const piece of reader().pieces(file)) parts.push(piece);
    assert.ok(Buffer.concat(parts).equals(data));
  });

  it('reads through a chunkserver whose directories it sees otherwise (another mount namespace)', async () => {
    const dir = path.join(cluster.root, 'elsewhere');
    fs.mkdirSync(dir);
    // The chunkserver keeps its chunks on a tmpfs mounted over `dir` in a namespace of its own:
    // the same path, another directory.
    const hidden = await cluster.startChunkserver([dir], ['unshare', '--mount', 'sh', '-c', 'mount -t tmpfs chunkfs-test "$0" && exec "$@"', dir]);
    await cluster.until((r) => r.chunkservers.filter((x) => x.alive).length === 5, 'the fifth chunkserver up');
    const p = '/everywhere';
    const bytes = randomBytes(300 * KiB);
    await cluster.client.create(p, 0o644, true, { replication: 5 });
    await new FileWriter(cluster.client, cluster.peers).write(p, 0, bytes);
    const c = await chunk(p, 0);
    assert.ok(c.replicas.includes(hidden.address));
    assert.deepEqual(fs.readdirSync(dir), [], 'nothing of its data shows here');
    const before = { ...local.stats };
    assert.ok((await pool.get(hidden.address).read(c.handle, c.version, 0, bytes.length)).equals(bytes));
    assert.deepEqual(local.stats, before, 'not tried locally at all');
    const beside = c.replicas.find((r) => r !== hidden.address)!;
    // A chunkserver's answer holds for a second (asked again halfway): under load it can lapse
    // between untilLocal and the read, which then goes through the chunkserver.
    for (let attempt = 0; local.stats.served === before.served; attempt++) {
      assert.ok(attempt < 5, 'never read from the files of a chunkserver beside it');
      await untilLocal([beside]);
      assert.ok((await pool.get(beside).read(c.handle, c.version, 0, bytes.length)).equals(bytes));
    }
    assert.equal(local.stats.served, before.served + 1);
  });

  it('puts replicas read through their files first', async () => {
    const c = await chunk('/everywhere', 0);
    const hidden = cluster.chunkservers[4].address;
    const beside = c.replicas.filter((r) => r !== hidden);
    for (let spread = 0; spread < 5; spread++) {
      // An answer can lapse between untilLocal and the ordering on a loaded machine (it counts
      // from when it was asked): an order made while a replica beside was not local is made again.
      let order: string[] = [];
      for (let attempt = 0; attempt === 0 || !beside.every((r) => pool.get(r).isLocal); attempt++) {
        assert.ok(attempt < 5, 'the replicas beside never stayed local for one ordering');
        await untilLocal(beside);
        order = pool.byReadLoad([hidden, ...beside], spread);
      }
      assert.ok(!pool.get(hidden).isLocal);
      assert.equal(order[order.length - 1], hidden, `spread ${spread}: ${order.join(', ')}`);
    }
  });

  it('lets go of a chunk file removed under it (within a second), and reads on from another replica', async () => {
    const c = await chunk(file, 2);
    const replica = cluster.replicaFiles(c.handle).find((r) => r.cs.address === c.replicas[0])!;
    assert.ok((await pool.get(c.replicas[0]).read(c.handle, c.version, 0, 10)).equals(data.subarray(2 * MiB, 2 * MiB + 10)));
    assert.ok(openHere().includes(replica.file), 'the file is held open after a read');
    fs.unlinkSync(replica.file); // as the chunkserver's deletion of the replica would
    await sleep(1100); // files in use are checked for a removal once a second
    // After a second without reads, the next goes through the chunkserver (which may refuse:
    // it holds the file open too), while it is asked again where its files are.
    await pool.get(c.replicas[0]).read(c.handle, c.version, 0, 10).catch(() => undefined);
    await sleep(100);
    const before = local.stats.declined;
    await pool.get(c.replicas[0]).read(c.handle, c.version, 0, 10).catch(() => undefined); // the chunkserver may refuse too
    assert.equal(local.stats.declined, before + 1);
    await sleep(50); // closing is asynchronous
    assert.ok(!openHere().some((f) => f.startsWith(replica.file)), `${replica.file} is closed: ${openHere().join(', ')}`);
    assert.ok((await reader().readChunk(file, c, 0, MiB)).equals(data.subarray(2 * MiB, 3 * MiB)));
  });

  it('counts a directory as local only under the same kernel and with the same device and inode', async () => {
    const dir = cluster.dataDirsOf(cluster.chunkservers[0])[0];
    const identity = (await dirIdentity(dir))!;
    const kernel = await bootId();
    assert.match(kernel, /^[0-9a-f-]{36}$/);
    assert.deepEqual(await local.visibleDirs({ bootId: kernel, dirs: [{ path: dir, identity }] }), [dir]);
    assert.deepEqual(await local.visibleDirs({ bootId: 'another-kernel', dirs: [{ path: dir, identity }] }), []);
    assert.deepEqual(await local.visibleDirs({ bootId: '', dirs: [{ path: dir, identity }] }), []);
    assert.deepEqual(await local.visibleDirs({ bootId: kernel, dirs: [{ path: dir, identity: '1:2' }] }), []);
    assert.deepEqual(await local.visibleDirs({ bootId: kernel, dirs: [{ path: path.join(dir, 'nowhere'), identity }] }), []);
    assert.deepEqual(await local.visibleDirs(null), []);
  });

  it('stops reading the files of a chunkserver that no longer answers (within a second)', async () => {
    const c = await chunk(file, 0);
    const victim = cluster.chunkservers.find((cs) => cs.address === c.replicas[0])!;
    assert.ok((await pool.get(victim.address).read(c.handle, c.version, 0, 10)).equals(data.subarray(0, 10)));
    await kill(victim);
    await sleep(1100);
    const before = { ...local.stats };
    await assert.rejects(pool.get(victim.address).read(c.handle, c.version, 0, 10));
    assert.deepEqual(local.stats, before, 'its files were not read');
    assert.ok(!pool.get(victim.address).isLocal);
  });
});

describe('open chunk files: the unused are let go', () => {
  it('forgetUnused closes the files not used within the time given, and keeps the others', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chunkfs-open-files-'));
    const files = new OpenChunkFiles<string>(8, (file) => fs.promises.open(file, 'r'));
    try {
      const [a, b] = ['a', 'b'].map((n) => path.join(dir, n));
      for (const f of [a, b]) fs.writeFileSync(f, 'x');
      await files.use(a, a, async () => undefined);
      await sleep(80);
      await files.use(b, b, async () => undefined);
      files.forgetUnused(40);
      assert.ok(!files.holds(a));
      assert.ok(files.holds(b));
      await sleep(20);
      assert.ok(!openHere().includes(a) && openHere().includes(b));
    } finally {
      files.forgetAll();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The files this process holds open. */
function openHere(): string[] {
  return fs.readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      return [fs.readlinkSync(`/proc/self/fd/${fd}`)];
    } catch {
      return [];
    }
  });
}
