import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChunkClientPool } from '../client/chunk-client';
import { ClusterReport, MasterClient } from '../client/master-client';
import { expectErrno } from './helpers/errno';
import { ServerProcess, startChunkserver, startMaster } from './helpers/server-process';

/**
 * Chunk allocation with real processes: the master places replicas on distinct live
 * chunkservers, creates them there, logs the file's chunk list (which survives a master crash)
 * and never reuses a handle; with too few chunkservers it places what it can, with none it
 * fails with ENOSPC and changes nothing.
 */
describe('chunk allocation', function () {
  this.timeout(90_000);
  let root: string;
  let master: ServerProcess;
  let client: MasterClient;
  const chunkservers: ServerProcess[] = [];
  const peers = new ChunkClientPool();
  const masterArgs = ['--chunk-size', String(1 << 20), '--replication', '3', '--dead-timeout', '1.5'];

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'chunkfs-alloc-'));
    master = await startMaster([path.join(root, 'meta')], masterArgs);
    for (let n = 0; n < 3; n++) {
      chunkservers.push(await startChunkserver([path.join(root, `cs${n}`)], [master.address], ['--heartbeat-interval', '0.2']));
    }
    client = new MasterClient(master.address);
    await until((r) => r.chunkservers.filter((c) => c.alive).length === 3, 'three chunkservers alive');
  });
  after(async () => {
    client.close();
    peers.closeAll();
    for (const p of [master, ...chunkservers]) {
      p.kill('SIGKILL');
      await p.stopped;
    }
    fs.rmSync(root, { recursive: true, force: true });
  });

  async function until(ok: (r: ClusterReport) => boolean, what: string): Promise<ClusterReport> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const r = await client.report();
      if (ok(r)) return r;
      if (Date.now() > deadline) assert.fail(`${what} did not happen: ${JSON.stringify(r)}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  it('places three replicas on distinct chunkservers and creates them there', async () => {
    await client.create('/f', 0o644, true);
    const { chunk, chunkSize } = await client.allocateChunk('/f', 0);
    assert.equal(chunkSize, 1 << 20);
    assert.equal(chunk.replicas.length, 3);
    assert.deepEqual([...chunk.replicas].sort(), chunkservers.map((c) => c.address).sort());
    for (const address of chunk.replicas) {
      assert.deepEqual(await peers.get(address).read(chunk.handle, chunk.version, 0, 0), Buffer.alloc(0), `chunk exists on ${address}`);
    }
    const again = await client.allocateChunk('/f', 0);
    assert.equal(again.chunk.handle, chunk.handle, 'allocating an existing chunk answers it');
  });

  it('keeps holes as handle 0 and answers locations by index', async () => {
    const { chunk: third } = await client.allocateChunk('/f', 2);
    const { chunks } = await client.chunkLocations('/f', 0, 10);
    assert.deepEqual(chunks.map((c) => [c.index, c.handle === 0, c.replicas.length]), [[0, false, 3], [1, true, 0], [2, false, 3]]);
    assert.equal(chunks[2].handle, third.handle);
    const r = await client.report();
    assert.deepEqual(r.chunks, { total: 2, underReplicated: 0, overReplicated: 0, corrupt: 0, missing: 0 });
  });

  it('refuses directories, missing files and bad indexes with exact errnos', async () => {
    await client.mkdir('/dir', 0o755);
    await expectErrno(client.allocateChunk('/dir', 0), 'EISDIR');
    await expectErrno(client.allocateChunk('/missing', 0), 'ENOENT');
    await expectErrno(client.allocateChunk('/f', -1), 'EINVAL');
    await expectErrno(client.chunkLocations('/f', 0.5, 1), 'EINVAL');
  });

  it('keeps chunk lists across a master crash, and never reuses a handle', async () => {
    const before = (await client.chunkLocations('/f', 0, 10)).chunks;
    const port = master.address.split(':')[1];
    master.kill('SIGKILL');
    await master.stopped;
    client.close();
    master = await startMaster([path.join(root, 'meta')], masterArgs, `127.0.0.1:${port}`);
    client = new MasterClient(master.address);
    await until((r) => r.chunkservers.filter((c) => c.alive && c.chunks === 2).length === 3, 'full reports after the restart');
    assert.deepEqual((await client.chunkLocations('/f', 0, 10)).chunks.map((c) => [c.handle, c.version, c.replicas.length]),
      before.map((c) => [c.handle, c.version, c.replicas.length]));
    const { chunk } = await client.allocateChunk('/f', 3);
    assert.ok(chunk.handle > Math.max(...before.map((c) => c.handle)), 'a fresh handle after the restart');
  });

  it('places what it can with too few chunkservers, and fails with ENOSPC (logging nothing) with none', async () => {
    for (const cs of chunkservers.slice(1)) {
      cs.kill('SIGKILL');
      await cs.stopped;
    }
    await until((r) => r.chunkservers.filter((c) => c.alive).length === 1, 'two chunkservers dead');
    await client.create('/g', 0o644, true);
    const { chunk } = await client.allocateChunk('/g', 0);
    assert.deepEqual(chunk.replicas, [chunkservers[0].address]);
    const r = await client.report();
    assert.equal(r.chunks!.total, 4);
    assert.equal(r.chunks!.underReplicated, 4, 'every chunk now has one live replica of three');

    chunkservers[0].kill('SIGKILL');
    await chunkservers[0].stopped;
    await until((x) => x.chunkservers.every((c) => !c.alive), 'all chunkservers dead');
    const txid = (await client.status()).txid;
    await expectErrno(client.allocateChunk('/g', 1), 'ENOSPC');
    assert.equal((await client.status()).txid, txid, 'nothing logged');
    assert.equal((await client.report()).chunks!.missing, 4);
  });
});
