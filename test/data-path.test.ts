import { strict as assert } from 'assert';
import { execFile } from 'child_process';
import { createHash, randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import { FileWriter } from '../client/file-writer';
import { PACKAGE_ROOT } from '../server/common/package-root';
import { runCli } from './helpers/server-process';
import { kill, TestCluster } from './helpers/test-cluster';

const MiB = 1 << 20;
const execFileP = promisify(execFile);
const CLI_BIN = path.join(PACKAGE_ROOT, 'bin', 'chunkfs');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * The data path with real processes and the CLI: put writes through leases and replica chains,
 * get and cat read back with replica failover. 1 MiB chunks, so files cross chunk boundaries.
 */
describe('data path: put, get, cat', function () {
  this.timeout(120_000);
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start('data', 3, ['--chunk-size', String(MiB), '--dead-timeout', '1.5']);
  });
  after(async () => cluster?.stop());
  const cli = (...args: string[]) => runCli([...args, '--master', cluster.master.address]);

  const sizes = [0, 1, MiB - 1, MiB, MiB + 1, 3.5 * MiB, 9 * MiB + 12345];

  it('put then get and cat return every byte, for files from 0 bytes to several chunks plus a tail', async () => {
    for (const size of sizes) {
      const data = randomBytes(size);
      const local = path.join(cluster.root, `in-${size}`);
      fs.writeFileSync(local, data);
      const put = await cli('put', local, `/f${size}`);
      assert.equal(put.code, 0, put.stderr);
      const out = path.join(cluster.root, `out-${size}`);
      const get = await cli('get', `/f${size}`, out);
      assert.equal(get.code, 0, get.stderr);
      assert.equal(sha(fs.readFileSync(out)), sha(data), `get of ${size} bytes`);
      assert.equal((await cluster.client.getattr(`/f${size}`)).size, size);
      if (size <= MiB + 1) {
        const cat = await execFileP(CLI_BIN, ['cat', `/f${size}`, '--master', cluster.master.address], { encoding: 'buffer', maxBuffer: 64 * MiB });
        assert.equal(sha(cat.stdout), sha(data), `cat of ${size} bytes`);
      }
    }
  });

  it('leaves every replica of every chunk byte-identical, at the version the lease gave', async () => {
    const { chunks } = await cluster.client.chunkLocations(`/f${9 * MiB + 12345}`, 0, 100);
    assert.equal(chunks.length, 10);
    for (const c of chunks) {
      assert.equal(c.replicas.length, 3);
      assert.equal(c.version, 1, 'allocated at 1 and leased to its writer without a version bump');
      const copies = await Promise.all(c.replicas.map((r) => cluster.peers.get(r).read(c.handle, c.version, 0, MiB)));
      for (const copy of copies) assert.ok(copy.equals(copies[0]), `replicas of chunk ${c.index} agree`);
    }
    const r = await cluster.client.report();
    assert.equal(r.chunks!.underReplicated + r.chunks!.missing + r.chunks!.corrupt, 0);
  });

  it('reads from another replica when one chunkserver is dead', async () => {
    const data = randomBytes(2 * MiB + 7);
    const local = path.join(cluster.root, 'failover');
    fs.writeFileSync(local, data);
    assert.equal((await cli('put', local, '/failover')).code, 0);
    const { chunks } = await cluster.client.chunkLocations('/failover', 0, 10);
    const victim = cluster.chunkservers.find((c) => c.address === chunks[0].replicas[0])!;
    await kill(victim);
    // At once, before the master notices: the first replica listed is dead.
    const out = path.join(cluster.root, 'failover.out');
    const get = await cli('get', '/failover', out);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(sha(fs.readFileSync(out)), sha(data));
  });

  it('completes a write during which a chunkserver is killed, and every byte reads back', async () => {
    // Three alive again (an earlier test killed one); with three, the new one is in every chain.
    const victim = await cluster.startChunkserver();
    await cluster.until((r) => r.chunkservers.filter((c) => c.alive).length === 3, 'three chunkservers alive');
    const writer = new FileWriter(cluster.client, cluster.peers);
    const data = randomBytes(12 * MiB);
    await cluster.client.create('/during-kill', 0o644, true);
    const writing = (async () => {
      for (let off = 0; off < data.length; off += 256 * 1024) await writer.write('/during-kill', off, data.subarray(off, off + 256 * 1024));
    })();
    await new Promise((r) => setTimeout(r, 300));
    await kill(victim);
    await writing; // retried under fresh leases: the version bump leaves the dead replica stale
    await writer.close();
    const out = path.join(cluster.root, 'during-kill.out');
    const get = await cli('get', '/during-kill', out);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(sha(fs.readFileSync(out)), sha(data));
  });

  it('bench data writes then reads and prints one JSON line per phase', async () => {
    const r = await cli('bench', 'data', '--files', '3', '--size', String(2 * MiB + 5), '--clients', '2', '--json');
    assert.equal(r.code, 0, r.stderr);
    const phases = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(phases.map((p) => [p.phase, p.files, p.bytes]), [['write', 3, 3 * (2 * MiB + 5)], ['read', 3, 3 * (2 * MiB + 5)]]);
    for (const p of phases) assert.ok(p.MBps > 0 && p.seconds > 0);
    assert.equal((await cluster.client.readdirAll('/')).filter((e) => e.name.startsWith('bench-data-')).length, 0, 'cleaned up');
  });

  it('refuses bad input with clear errors and changes nothing', async () => {
    const missing = await cli('put', path.join(cluster.root, 'nope'), '/x');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^chunkfs: ENOENT: no such local file/);
    const dir = await cli('put', cluster.root, '/x');
    assert.match(dir.stderr, /^chunkfs: EISDIR: /);
    const exists = await cli('put', path.join(cluster.root, 'in-1'), '/f1');
    assert.match(exists.stderr, /^chunkfs: EEXIST: /);
    assert.match((await cli('get', '/nope', path.join(cluster.root, 'x'))).stderr, /^chunkfs: ENOENT: /);
    await cluster.client.mkdir('/dir', 0o755);
    assert.match((await cli('cat', '/dir')).stderr, /^chunkfs: EISDIR: /);
    assert.equal(fs.existsSync(path.join(cluster.root, 'x')), false, 'a failed get leaves no file');
    assert.equal((await cluster.client.getattr('/f1')).size, 1, 'the refused put changed nothing');
  });
});
