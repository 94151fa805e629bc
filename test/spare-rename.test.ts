import { strict as assert } from 'assert';
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { FileWriter } from '../client/file-writer';
import { TestCluster } from './helpers/test-cluster';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * A new chunk takes a spare file and renames it out of spare/ only once its bytes are synced
 * (chunk-file.ts): renamed first, the file counts as newly linked, and on ext4 without a
 * journal its sync then also writes the chunk directory's block and inode. Seen from outside
 * with `strace -y` on real chunkservers: the `fdatasync` of each taken spare names the file by
 * its spare path, which it could not if the rename had come first.
 */
describe('a spare taken for a new chunk', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  const tracers: ChildProcess[] = [];

  before(async () => {
    cluster = await TestCluster.start('spare-rename', 3, ['--chunk-size', String(MiB)]);
  });
  after(async () => {
    for (const t of tracers) t.kill('SIGKILL');
    await cluster?.stop();
  });

  /** Attaches strace to every thread of `pid`; resolves once it is attached. */
  function trace(pid: number, log: string): Promise<ChildProcess> {
    const t = spawn('strace', ['-f', '-y', '-e', 'trace=fdatasync,rename,renameat,renameat2', '-o', log, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    tracers.push(t);
    return new Promise((resolve, reject) => {
      let err = '';
      t.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (/attached/.test(err)) resolve(t);
      });
      t.on('exit', (code) => reject(new Error(`strace exited (${code}): ${err}`)));
    });
  }

  it('is renamed into place after its sync: small, mid-size and large first writes', async () => {
    const spareDirs = cluster.chunkservers.flatMap((cs) => cluster.dataDirsOf(cs).map((d) => path.join(d, 'spare')));
    await cluster.until(() => spareDirs.every((d) => fs.readdirSync(d).length > 0), 'spares made on every chunkserver');
    const logs = cluster.chunkservers.map((_, i) => path.join(cluster.root, `strace${i}.log`));
    const attached = await Promise.all(cluster.chunkservers.map((cs, i) => trace(cs.pid, logs[i])));

    // Three new chunks on each replica: a small first write (one pwrite, maybe on the main
    // thread), a mid-size one and a large aligned one (O_DIRECT), each from offset 0 of its chunk.
    await cluster.client.create('/f', 0o644, true);
    const writer = new FileWriter(cluster.client, cluster.peers);
    await writer.write('/f', 0, Buffer.alloc(4 * KiB, 1));
    await writer.write('/f', MiB, Buffer.alloc(128 * KiB, 2));
    await writer.write('/f', 2 * MiB, Buffer.alloc(512 * KiB, 3));
    await writer.close();
    assert.deepEqual((await cluster.readAll('/f')).subarray(2 * MiB, 2 * MiB + 3), Buffer.from([3, 3, 3]));

    for (const t of attached) {
      const exited = new Promise((r) => t.once('exit', r));
      t.kill('SIGINT'); // detaches; the chunkserver goes on
      await exited;
    }
    for (const log of logs) {
      const lines = fs.readFileSync(log, 'utf8').split('\n');
      // rename("/…/spare/7", "/…/chunks/0a/10.chunk") = 0, possibly split by -f around other calls.
      const renames = lines.flatMap((l, i) => {
        const m = /rename(?:at2?)?\(.*?"([^"]*\/spare\/[^"]+)", .*?"([^"]*\.chunk)"/.exec(l);
        return m ? [{ at: i, spare: m[1] }] : [];
      });
      assert.ok(renames.length >= 3, `${log}: ${renames.length} renames out of spare/, 3 chunks were created:\n${lines.join('\n')}`);
      for (const { at, spare } of renames) {
        const synced = lines.slice(0, at).some((l) => l.includes(`fdatasync(`) && l.includes(`<${spare}>`));
        assert.ok(synced, `${log}: ${spare} renamed before an fdatasync of it under that name:\n${lines.join('\n')}`);
      }
    }
  });
});
