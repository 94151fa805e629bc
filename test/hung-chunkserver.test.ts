import { strict as assert } from 'assert';
import { randomBytes } from 'crypto';
import { ChunkClientPool, failedReplica } from '../client/chunk-client';
import { FileWriter } from '../client/file-writer';
import { FsError } from '../server/common/fs-error';
import { TestCluster } from './helpers/test-cluster';

const MiB = 1 << 20;

/**
 * A chunkserver stopped with SIGSTOP keeps its connections open and never answers. Writers
 * here wait up to a minute per replica, so only the pings can fail a write on it: they do,
 * naming it, whether it heads the chain or is further down; calls to it then fail at once for a
 * while, and it serves again once continued. A replica whose sender hangs mid-write drops the
 * write, so the chunk's next write gets its turn.
 */
describe('a hung chunkserver', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  const pool = new ChunkClientPool({ deadlineMs: 60_000 });

  before(async () => {
    cluster = await TestCluster.start('hung', 3, ['--chunk-size', String(MiB), '--dead-timeout', '60']);
  });
  after(async () => {
    for (const cs of cluster?.chunkservers ?? []) cs.kill('SIGCONT');
    pool.closeAll();
    await cluster?.stop();
  });

  /** A written chunk's lease: its handle, version and replicas (primary first). */
  async function writtenChunk(path: string) {
    await cluster.client.create(path, 0o644, true);
    const writer = new FileWriter(cluster.client, cluster.peers);
    await writer.write(path, 0, randomBytes(1000));
    await writer.close();
    return (await cluster.client.allocateChunk(path, 0)).chunk;
  }
  const processAt = (address: string) => cluster.chunkservers.find((cs) => cs.address === address)!;
  const rejection = (p: Promise<unknown>) => p.then(() => assert.fail('the write to a stopped chunkserver succeeded'), (err: FsError) => err);

  it('a write to it fails on pings, naming it; the next fails at once; continued, it takes writes again', async () => {
    const { handle, version, replicas: [primary, ...chain] } = await writtenChunk('/primary-stopped');
    await pool.get(primary).write(handle, version, 0, Buffer.from('warm'), chain); // its data stream is known
    const stopped = processAt(primary);
    stopped.kill('SIGSTOP');
    try {
      const err = await rejection(pool.get(primary).write(handle, version, 0, randomBytes(MiB), chain));
      assert.equal(err.code, 'ETIMEDOUT');
      assert.match(err.message, /did not answer two pings/);
      assert.equal(failedReplica(err), primary);
      const again = await rejection(pool.get(primary).write(handle, version, 0, randomBytes(10), chain));
      assert.match(again.message, /did not answer pings lately/);
      assert.equal(failedReplica(again), primary);
    } finally {
      stopped.kill('SIGCONT');
    }
    // Once the window has passed, the replica answers again.
    for (const deadline = Date.now() + 30_000; ;) {
      const ok = await pool.get(primary).write(handle, version, 0, Buffer.from('back'), chain).then(() => true, () => false);
      if (ok) break;
      assert.ok(Date.now() < deadline, `${primary} never took a write again`);
      await new Promise((r) => setTimeout(r, 500));
    }
  });

  it('a write through it down a chain fails on the forwarding replica\'s pings, naming it', async () => {
    const { handle, version, replicas: [primary, second, third] } = await writtenChunk('/second-stopped');
    await pool.get(primary).write(handle, version, 0, Buffer.from('warm'), [second, third]);
    const stopped = processAt(second);
    stopped.kill('SIGSTOP');
    try {
      // The primary's own deadline for the rest of the chain is 20 s: its pings tell first.
      const err = await rejection(pool.get(primary).write(handle, version, 0, randomBytes(MiB), [second, third]));
      assert.equal(err.code, 'ETIMEDOUT');
      assert.equal(failedReplica(err), second, err.message);
      assert.match(err.message, /did not answer two pings/);
    } finally {
      stopped.kill('SIGCONT');
    }
  });

  it('a write whose data stops coming midway (its sender hung) is dropped, freeing the chunk for the next write', async () => {
    const { handle, version, replicas } = await writtenChunk('/sender-stopped');
    const tail = replicas[replicas.length - 1];
    // This test is the hung sender: half the data, then nothing, and no abort within its minute.
    const stuck = await pool.get(tail).openWrite({ handle, version, offset: 0, length: MiB, create: false, chain: [] });
    await stuck.send(randomBytes(MiB / 2));
    const stuckReply = stuck.reply();
    stuckReply.catch(() => undefined);
    // Another writer on the same chunk waits for its turn, up to 30 s: the stall drop gives it.
    const other = new ChunkClientPool({ deadlineMs: 30_000 });
    try {
      const data = randomBytes(1000);
      await other.get(tail).write(handle, version, 0, data, []);
      assert.ok((await other.get(tail).read(handle, version, 0, 1000)).equals(data));
      await assert.rejects(stuckReply, /closed the connection|connection failed/);
    } finally {
      stuck.abort();
      other.closeAll();
    }
  });

  it('a first call to it, asking where its data stream is, fails on pings too', async () => {
    const { handle, version, replicas: [primary, ...chain] } = await writtenChunk('/never-asked');
    const fresh = new ChunkClientPool({ deadlineMs: 60_000 });
    const stopped = processAt(primary);
    stopped.kill('SIGSTOP');
    try {
      const err = await rejection(fresh.get(primary).write(handle, version, 0, randomBytes(10), chain));
      assert.match(err.message, /did not answer two pings/);
      assert.equal(failedReplica(err), primary);
    } finally {
      stopped.kill('SIGCONT');
      fresh.closeAll();
    }
  });
});
