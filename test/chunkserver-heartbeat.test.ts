import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ClusterReport, MasterClient } from '../client/master-client';
import { ServerProcess, startChunkserver, startMaster } from './helpers/server-process';

/**
 * Real master and chunkserver processes: registration, heartbeats, liveness. The master's
 * knowledge of chunkservers is soft state: after its own restart it is rebuilt from heartbeats.
 */
describe('chunkservers heartbeating to a master', function () {
  this.timeout(60_000);
  let root: string;
  const procs: ServerProcess[] = [];

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'chunkfs-hb-'));
  });
  afterEach(async () => {
    for (const p of procs.splice(0)) {
      p.kill('SIGKILL');
      await p.stopped;
    }
    fs.rmSync(root, { recursive: true, force: true });
  });

  const master = async (): Promise<ServerProcess> => {
    const m = await startMaster([path.join(root, 'meta')], ['--dead-timeout', '1.5']);
    procs.push(m);
    return m;
  };
  const chunkserver = async (n: number, masterAddress: string): Promise<ServerProcess> => {
    const cs = await startChunkserver([path.join(root, `cs${n}`)], [masterAddress], ['--heartbeat-interval', '0.2', '--rack', `r${n % 2}`]);
    procs.push(cs);
    return cs;
  };
  const until = async (client: MasterClient, ok: (r: ClusterReport) => boolean, what: string): Promise<ClusterReport> => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const r = await client.report();
      if (ok(r)) return r;
      if (Date.now() > deadline) assert.fail(`${what} did not happen: ${JSON.stringify(r.chunkservers)}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  };

  it('registers, detects a killed chunkserver as dead, and knows it again by its id when it returns', async () => {
    const m = await master();
    const client = new MasterClient(m.address);
    const servers = [await chunkserver(0, m.address), await chunkserver(1, m.address), await chunkserver(2, m.address)];
    let r = await until(client, (x) => x.chunkservers.filter((c) => c.alive).length === 3, 'three chunkservers alive');
    const byAddress = new Map(r.chunkservers.map((c) => [c.address, c]));
    for (const s of servers) {
      const c = byAddress.get(s.address);
      assert.ok(c, `${s.address} registered`);
      assert.ok(c.capacityBytes > 0 && c.capacityBytes >= c.usedBytes, 'capacity from the data directory');
      assert.ok(c.freeBytes > 0 && c.freeBytes <= c.capacityBytes, `free space from the data directory: ${c.freeBytes} of ${c.capacityBytes}`);
    }
    assert.deepEqual(r.chunkservers.map((c) => c.rack).sort(), ['r0', 'r0', 'r1']);
    assert.deepEqual(r.chunks, { total: 0, underReplicated: 0, overReplicated: 0, corrupt: 0, missing: 0 });
    const fsStats = await client.statfs();
    const alive = r.chunkservers.filter((c) => c.alive);
    assert.equal(fsStats.capacityBytes, alive.reduce((sum, c) => sum + c.capacityBytes, 0), 'statfs = live chunkservers');
    assert.ok(fsStats.freeBytes > 0 && fsStats.freeBytes <= fsStats.capacityBytes);

    const victim = byAddress.get(servers[1].address)!;
    servers[1].kill('SIGKILL');
    await servers[1].stopped;
    r = await until(client, (x) => x.chunkservers.some((c) => c.id === victim.id && !c.alive), 'the killed chunkserver marked dead');
    assert.equal(r.chunkservers.filter((c) => c.alive).length, 2);

    const back = await chunkserver(1, m.address); // same data directory, new port
    r = await until(client, (x) => x.chunkservers.filter((c) => c.alive).length === 3, 'the chunkserver back');
    assert.equal(r.chunkservers.length, 3, 'recognised by its id, not registered twice');
    assert.equal(r.chunkservers.find((c) => c.id === victim.id)!.address, back.address);
    client.close();
  });

  it('rebuilds its view of the chunkservers from heartbeats after a master restart', async () => {
    const metaDirs = [path.join(root, 'meta')];
    let m = await master();
    const port = m.address.split(':')[1];
    for (let n = 0; n < 3; n++) await chunkserver(n, m.address);
    let client = new MasterClient(m.address);
    await until(client, (x) => x.chunkservers.filter((c) => c.alive).length === 3, 'three chunkservers alive');
    client.close();
    m.kill('SIGKILL');
    await m.stopped;
    // Same address: the chunkservers keep heartbeating to what they were configured with.
    m = await startMaster(metaDirs, ['--dead-timeout', '1.5'], `127.0.0.1:${port}`);
    procs.push(m);
    client = new MasterClient(m.address);
    const r = await until(client, (x) => x.chunkservers.filter((c) => c.alive).length === 3, 'all three re-registered');
    assert.equal(r.chunkservers.length, 3);
    client.close();
  });
});
