import { strict as assert } from 'assert';
import { execFile } from 'child_process';
import { createHash, randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import { ChunkClientPool } from '../client/chunk-client';
import { FileWriter } from '../client/file-writer';
import { ClusterReport, MasterClient } from '../client/master-client';
import { PACKAGE_ROOT } from '../server/common/package-root';
import { runCli, ServerProcess, startChunkserver, startMaster } from './helpers/server-process';

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
  let root: string;
  let master: ServerProcess;
  let client: MasterClient;
  const chunkservers: ServerProcess[] = [];
  const peers = new ChunkClientPool();
  const cli = (...args: string[]) => runCli([...args, '--master', master.address]);

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'chunkfs-data-'));
    master = await startMaster([path.join(root, 'meta')], ['--chunk-size', String(MiB), '--dead-timeout', '1.5']);
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

  async function until(ok: (r: ClusterReport) => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (!ok(await client.report())) {
      if (Date.now() > deadline) assert.fail(`${what} did not happen`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  const sizes = [0, 1, MiB - 1, MiB, MiB + 1, 3.5 * MiB, 9 * MiB + 12345];

  it('put then get and cat return every byte, for files from 0 bytes to several chunks plus a tail', async () => {
    for (const size of sizes) {
      const data = randomBytes(size);
      const local = path.join(root, `in-${size}`);
      fs.writeFileSync(local, data);
      const put = await cli('put', local, `/f${size}`);
      assert.equal(put.code, 0, put.stderr);
      const out = path.join(root, `out-${size}`);
      const get = await cli('get', `/f${size}`, out);
      assert.equal(get.code, 0, get.stderr);
      assert.equal(sha(fs.readFileSync(out)), sha(data), `get of ${size} bytes`);
      assert.equal((await client.getattr(`/f${size}`)).size, size);
      if (size <= MiB + 1) {
        const cat = await execFileP(CLI_BIN, ['cat', `/f${size}`, '--master', master.address], { encoding: 'buffer', maxBuffer: 64 * MiB });
        assert.equal(sha(cat.stdout), sha(data), `cat of ${size} bytes`);
      }
    }
  });

  it('leaves every replica of every chunk byte-identical, at the version the lease gave', async () => {
    const { chunks } = await client.chunkLocations(`/f${9 * MiB + 12345}`, 0, 100);
    assert.equal(chunks.length, 10);
    for (const c of chunks) {
      assert.equal(c.replicas.length, 3);
      assert.equal(c.version, 2, 'allocated at 1, leased once');
      const copies = await Promise.all(c.replicas.map((r) => peers.get(r).read(c.handle, c.version, 0, MiB)));
      for (const copy of copies) assert.ok(copy.equals(copies[0]), `replicas of chunk ${c.index} agree`);
    }
    const r = await client.report();
    assert.equal(r.chunks!.underReplicated + r.chunks!.missing + r.chunks!.corrupt, 0);
  });

  it('reads from another replica when one chunkserver is dead', async () => {
    const data = randomBytes(2 * MiB + 7);
    const local = path.join(root, 'failover');
    fs.writeFileSync(local, data);
    assert.equal((await cli('put', local, '/failover')).code, 0);
    const { chunks } = await client.chunkLocations('/failover', 0, 10);
    const victim = chunkservers.find((c) => c.address === chunks[0].replicas[0])!;
    victim.kill('SIGKILL');
    await victim.stopped;
    // At once, before the master notices: the first replica listed is dead.
    const out = path.join(root, 'failover.out');
    const get = await cli('get', '/failover', out);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(sha(fs.readFileSync(out)), sha(data));
  });

  it('completes a write during which a chunkserver is killed, and every byte reads back', async () => {
    // Three alive again (an earlier test killed one); with three, the new one is in every chain.
    const victim = await startChunkserver([path.join(root, 'cs3')], [master.address], ['--heartbeat-interval', '0.2']);
    chunkservers.push(victim);
    await until((r) => r.chunkservers.filter((c) => c.alive).length === 3, 'three chunkservers alive');
    const writer = new FileWriter(client, peers);
    const data = randomBytes(12 * MiB);
    await client.create('/during-kill', 0o644, true);
    const writing = (async () => {
      for (let off = 0; off < data.length; off += 256 * 1024) await writer.write('/during-kill', off, data.subarray(off, off + 256 * 1024));
    })();
    await new Promise((r) => setTimeout(r, 300));
    victim.kill('SIGKILL');
    await victim.stopped;
    await writing; // retried under fresh leases: the version bump leaves the dead replica stale
    await writer.close();
    const out = path.join(root, 'during-kill.out');
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
    assert.equal((await client.readdirAll('/')).filter((e) => e.name.startsWith('bench-data-')).length, 0, 'cleaned up');
  });

  it('refuses bad input with clear errors and changes nothing', async () => {
    const missing = await cli('put', path.join(root, 'nope'), '/x');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^chunkfs: ENOENT: no such local file/);
    const dir = await cli('put', root, '/x');
    assert.match(dir.stderr, /^chunkfs: EISDIR: /);
    const exists = await cli('put', path.join(root, 'in-1'), '/f1');
    assert.match(exists.stderr, /^chunkfs: EEXIST: /);
    assert.match((await cli('get', '/nope', path.join(root, 'x'))).stderr, /^chunkfs: ENOENT: /);
    await client.mkdir('/dir', 0o755);
    assert.match((await cli('cat', '/dir')).stderr, /^chunkfs: EISDIR: /);
    assert.equal(fs.existsSync(path.join(root, 'x')), false, 'a failed get leaves no file');
    assert.equal((await client.getattr('/f1')).size, 1, 'the refused put changed nothing');
  });
});
