import { strict as assert } from 'assert';
import { createHash, randomBytes } from 'crypto';
import { FileWriter } from '../client/file-writer';
import type { ClusterReport } from '../client/master-client';
import { runCli } from './helpers/server-process';
import { kill, TestCluster } from './helpers/test-cluster';

const MiB = 1 << 20;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * `chunkfs admin decommission` with real processes: four chunkservers, replication 3 by default
 * (one file with 1), 1 MiB chunks. The drained server ends decommissioned with every chunk at its
 * own file's factor elsewhere,
 * keeps that state across a master restart, and can then be killed with nothing lost. Bad
 * requests (unknown server, too few servers left) fail clearly and change nothing.
 */
describe('decommissioning a chunkserver', function () {
  this.timeout(180_000);
  let cluster: TestCluster;
  const files = new Map<string, Buffer>();
  /** Files' replication factors other than the cluster default of 3. */
  const factors = new Map<string, number>();

  before(async () => {
    cluster = await TestCluster.start('decom', 4, ['--chunk-size', String(MiB), '--dead-timeout', '1.5']);
  });
  after(async () => cluster?.stop());
  const cli = (...args: string[]) => runCli([...args, '--master', cluster.master.address]);
  const healthy = (r: ClusterReport) => r.chunks!.total > 0 && r.chunks!.underReplicated + r.chunks!.overReplicated + r.chunks!.missing === 0;

  async function put(p: string, size: number, replication?: number): Promise<void> {
    const data = randomBytes(size);
    const writer = new FileWriter(cluster.client, cluster.peers);
    await cluster.client.create(p, 0o644, true, { replication });
    if (replication !== undefined) factors.set(p, replication);
    await writer.write(p, 0, data);
    await writer.close();
    files.set(p, data);
  }

  /** Every file's chunks list as many replicas as its factor, none of them on `address`. */
  async function placedAwayFrom(address: string): Promise<void> {
    for (const p of files.keys()) {
      for (const c of (await cluster.client.chunkLocations(p, 0, 1000)).chunks) {
        assert.equal(c.replicas.length, factors.get(p) ?? 3, `${p} chunk ${c.index}: ${c.replicas.join(', ')}`);
        assert.ok(!c.replicas.includes(address), `${p} chunk ${c.index} still served from ${address}`);
      }
    }
  }

  it('refuses an unknown chunkserver with ENOENT, changing nothing', async () => {
    await put('/a', 5 * MiB + 123);
    await cluster.until(healthy, 'chunks at three replicas');
    for (const name of ['no-such-id', '127.0.0.1:1']) {
      const r = await cli('admin', 'decommission', name);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /ENOENT: no chunkserver with id or address/);
    }
    const report = await cluster.client.report();
    assert.ok(report.chunkservers.every((cs) => cs.state === 'normal'), JSON.stringify(report.chunkservers));
  });

  it('refuses with ENOSPC when a file on the server wants more replicas than would remain, changing nothing', async () => {
    // Four replicas on four servers: draining any one leaves three for a factor of 4.
    await put('/wide', MiB + 7, 4);
    await cluster.until(healthy, 'the factor-4 file on all four chunkservers');
    const r = await cli('admin', 'decommission', (await cluster.client.report()).chunkservers[0].id);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /ENOSPC: decommissioning .* would leave 3 live chunkservers taking replicas, fewer than the replication factor 4/);
    assert.ok((await cluster.client.report()).chunkservers.every((cs) => cs.state === 'normal'));
    await cluster.client.setReplication('/wide', 3);
    factors.delete('/wide');
    await cluster.until(healthy, 'the file trimmed to three replicas');
  });

  it('drains a chunkserver, marks it decommissioned (also after a master restart), then it can die with nothing lost', async () => {
    await put('/b', 3 * MiB);
    await put('/c', 1);
    // Its one replica is drained to one elsewhere: the drain measures each chunk by its own factor.
    await put('/one', MiB / 2, 1);
    await cluster.until(healthy, 'every chunk at its factor');
    const [oneHolder] = (await cluster.client.chunkLocations('/one', 0, 1)).chunks[0].replicas;
    const victim = (await cluster.client.report()).chunkservers.find((cs) => cs.address === oneHolder)!;
    assert.ok(victim.chunks > 0);

    const started = await cli('admin', 'decommission', victim.address);
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stdout, new RegExp(`chunkserver ${victim.id} at ${victim.address}: decommissioning`));
    // Written while it drains: none of it may land there.
    await put('/during', 2 * MiB + 5);

    const done = await cluster.until((r) => r.chunkservers.find((c) => c.id === victim.id)!.state === 'decommissioned' && healthy(r),
      'the chunkserver decommissioned with every chunk at its factor', 60_000);
    assert.equal(done.chunkservers.find((c) => c.id === victim.id)!.alive, true);
    await placedAwayFrom(victim.address);

    const json = await cli('admin', 'report', '--json');
    assert.equal(json.code, 0, json.stderr);
    const states = (JSON.parse(json.stdout) as ClusterReport).chunkservers.map((c) => [c.id, c.state]);
    assert.deepEqual(states.filter(([, s]) => s !== 'normal'), [[victim.id, 'decommissioned']]);
    const human = await cli('admin', 'report');
    assert.match(human.stdout, new RegExp(`alive ${victim.id} ${victim.address} DECOMMISSIONED chunks=\\d+ used=\\d+/\\d+ bytes, free=[1-9]\\d* bytes`));

    // The state is in the log: a restarted master knows it as soon as the chunkserver is back.
    await cluster.restartMaster();
    await cluster.until((r) => r.chunkservers.find((c) => c.id === victim.id)?.state === 'decommissioned' && healthy(r),
      'the decommissioned state recovered from the log');
    await put('/after', MiB + 1);
    await cluster.until(healthy, 'the new file at three replicas');
    await placedAwayFrom(victim.address);

    await kill(cluster.chunkservers.find((c) => c.address === victim.address)!);
    for (const [p, data] of files) assert.equal(sha(await cluster.readAll(p)), sha(data), `${p} intact`);
    const fsck = await cli('admin', 'fsck', '/');
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    assert.match(fsck.stdout, /is HEALTHY/);
    assert.match(fsck.stdout, /0 under-replicated, 0 over-replicated, 0 corrupt, 0 missing/);
  });

  it('refuses to decommission when too few chunkservers would remain for the replication factor, changing nothing', async () => {
    // Three normal servers are left; draining one more would leave two for three replicas.
    const r0 = await cluster.client.report();
    const normal = r0.chunkservers.find((c) => c.alive && c.state === 'normal')!;
    const r = await cli('admin', 'decommission', normal.id);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /ENOSPC: decommissioning .* would leave 2 live chunkservers taking replicas, fewer than the replication factor 3/);
    const r1 = await cluster.client.report();
    assert.equal(r1.chunkservers.find((c) => c.id === normal.id)!.state, 'normal');
    assert.equal(r1.chunkservers.filter((c) => c.state !== 'normal').length, 1);
  });
});
