import { strict as assert } from 'assert';
import { createHash, randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { runCli } from './helpers/server-process';
import { TestCluster } from './helpers/test-cluster';

const MiB = 1 << 20;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Per-file replication factors with real processes: three chunkservers, a cluster default of
 * 3, files put with --replication 1 and 2; setrep up and down, with the replication monitor
 * adding and trimming replicas on disk; the factors surviving master restarts (log replay,
 * then a checkpoint).
 */
describe('per-file replication factor (put --replication, setrep)', function () {
  this.timeout(180_000);
  let cluster: TestCluster;
  const data = randomBytes(2 * MiB + 1234); // three chunks
  let local: string;

  const cli = (...args: string[]) => runCli([...args, '--master', cluster.master.address]);
  const ok = async (...args: string[]): Promise<string> => {
    const r = await cli(...args);
    assert.equal(r.code, 0, `chunkfs ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const factorOf = async (p: string): Promise<number> => (JSON.parse(await ok('stat', '--json', p)) as { replication: number }).replication;
  /** Replicas on disk of each chunk of the file (every chunkserver's data directories). */
  const replicasOnDisk = async (p: string): Promise<number[]> => {
    const { chunks } = await cluster.client.chunkLocations(p, 0, 1000);
    return chunks.map((c) => cluster.replicaFiles(c.handle).length);
  };
  /** Polls until every chunk of the file has `n` replicas on disk and fsck finds it healthy. */
  const untilReplicas = async (p: string, n: number): Promise<void> => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const onDisk = await replicasOnDisk(p);
      const fsck = await cluster.client.fsck(p);
      if (onDisk.length === 3 && onDisk.every((k) => k === n) && fsck.unhealthy.length === 0) return;
      if (Date.now() > deadline) assert.fail(`${p}: ${JSON.stringify(onDisk)} replicas on disk, fsck ${JSON.stringify(fsck)}; want ${n} each`);
      await new Promise((res) => setTimeout(res, 200));
    }
  };

  before(async () => {
    cluster = await TestCluster.start('repl', 3, ['--chunk-size', String(MiB), '--dead-timeout', '1.5']);
    local = path.join(cluster.root, 'local');
    fs.writeFileSync(local, data);
  });
  after(async () => cluster?.stop());

  it('put --replication places that many replicas; without it the cluster default; stat shows the factor', async () => {
    await ok('put', local, '/one', '--replication', '1');
    await ok('put', local, '/two', '--replication', '2');
    await ok('put', local, '/default');
    assert.deepEqual([await factorOf('/one'), await factorOf('/two'), await factorOf('/default')], [1, 2, 3]);
    assert.match(await ok('stat', '/two'), /Replication: 2/);
    assert.equal(JSON.parse(await ok('stat', '--json', '/')).replication, 0, 'directories have no factor');
    assert.deepEqual(await replicasOnDisk('/one'), [1, 1, 1]);
    assert.deepEqual(await replicasOnDisk('/two'), [2, 2, 2]);
    assert.deepEqual(await replicasOnDisk('/default'), [3, 3, 3]);
    // Measured against each file's own factor, nothing is under- or over-replicated.
    const fsck = JSON.parse(await ok('admin', 'fsck', '/', '--json'));
    assert.equal(fsck.files, 3);
    assert.deepEqual(fsck.unhealthy, []);
    assert.deepEqual(fsck.chunks, { total: 9, underReplicated: 0, overReplicated: 0, corrupt: 0, missing: 0 });
    for (const p of ['/one', '/two', '/default']) assert.equal(sha(await cluster.readAll(p)), sha(data), p);
  });

  it('refuses bad factors with EINVAL and changes nothing', async () => {
    for (const bad of ['0', '33', '2.5', 'many']) {
      const put = await cli('put', local, '/bad', '--replication', bad);
      assert.equal(put.code, 1, bad);
      assert.match(put.stderr, /^chunkfs: EINVAL: replication factor .* is not a whole number from 1 to 32/, bad);
      const setrep = await cli('setrep', bad, '/two');
      assert.equal(setrep.code, 1, bad);
      assert.match(setrep.stderr, /^chunkfs: EINVAL: /, bad);
    }
    assert.match((await cli('stat', '/bad')).stderr, /^chunkfs: ENOENT: /, 'no file left behind');
    assert.equal(await factorOf('/two'), 2);
    assert.match((await cli('setrep', '2', '/')).stderr, /^chunkfs: EISDIR: /);
    assert.match((await cli('setrep', '2', '/nope')).stderr, /^chunkfs: ENOENT: /);
    const master = await runCli(['master', '--meta-dir', path.join(cluster.root, 'unused'), '--listen', '127.0.0.1:0', '--replication', '33']);
    assert.equal(master.code, 2);
    assert.match(master.stderr, /--replication must be at most 32/);
  });

  it('setrep up re-replicates, setrep down trims surplus replicas; data intact', async () => {
    await ok('setrep', '3', '/one');
    await ok('setrep', '1', '/two');
    assert.deepEqual([await factorOf('/one'), await factorOf('/two')], [3, 1]);
    await untilReplicas('/one', 3);
    await untilReplicas('/two', 1);
    // -w returns once the monitor has done its work (here: trimming /default to 2).
    await ok('setrep', '-w', '2', '/default');
    assert.deepEqual(await replicasOnDisk('/default'), [2, 2, 2]);
    for (const p of ['/one', '/two', '/default']) assert.equal(sha(await cluster.readAll(p)), sha(data), p);
  });

  it('the factors survive master restarts: from log replay, then from a checkpoint', async () => {
    const factors = async () => [await factorOf('/one'), await factorOf('/two'), await factorOf('/default')];
    await cluster.restartMaster(); // no checkpoint yet: every create and setrep replayed from the log
    assert.deepEqual(await factors(), [3, 1, 2]);
    await ok('admin', 'checkpoint');
    await ok('setrep', '2', '/one'); // after the checkpoint: from the log again
    await cluster.restartMaster();
    assert.deepEqual(await factors(), [2, 1, 2]);
    await cluster.until((r) => r.chunkservers.filter((c) => c.alive).length === 3, 'chunkservers back');
    await untilReplicas('/one', 2);
    await untilReplicas('/two', 1);
    await untilReplicas('/default', 2);
  });
});
