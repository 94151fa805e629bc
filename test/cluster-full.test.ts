import { strict as assert } from 'assert';
import { TestCluster } from './helpers/test-cluster';
import { TestMount } from './helpers/test-mount';

const MiB = 1 << 20;
/** The cluster's chunk size: placement needs a chunk's room on each replica's disk. */
const CHUNK = 4 * MiB;

/**
 * A cluster that runs out of space, through a real mount: three chunkservers, each on a real
 * 24 MiB tmpfs, 4 MiB chunks, deleted files' chunks kept for ten minutes (`--gc-delay 600`)
 * unless their server is short of space, a file written before it fills.
 * Needs root to mount tmpfs (CI runs as root): without it this fails loudly rather than skip.
 */
describe('a full cluster', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let mount: TestMount;

  before(async () => {
    cluster = await TestCluster.start('full', 0, ['--chunk-size', String(CHUNK), '--gc-delay', '600']);
    for (let i = 0; i < 3; i++) await cluster.startChunkserverOnTmpfs('24m');
    await cluster.until((r) => r.chunkservers.filter((cs) => cs.alive).length === 3, '3 chunkservers alive');
    // Flushing every MiB, a chunk takes four writes: the servers fill under writes to chunks
    // they already have, not only at placement.
    mount = await TestMount.start(cluster, 'mnt', ['--write-buffer', '1']);
    await mount.ok('head -c 2M /dev/urandom > kept.bin && sha256sum kept.bin > ../kept.sha');
  });
  after(async () => {
    await mount?.stop();
    await cluster?.stop();
  });

  it('writers filling the chunkservers mid-chunk: each fails with ENOSPC or lands whole', async () => {
    // Six files of 8 MiB at once: each gets its first chunk while the servers still have room,
    // then the servers fill under the writes (3 x 48 MiB wanted, 3 x 24 MiB there).
    const names = Array.from({ length: 6 }, (_, i) => `w${i}`);
    await mount.ok(names.map((n) => `head -c 8M /dev/urandom > ../${n}.src`).join(' && '));
    const copies = await Promise.all(names.map((n) => mount.sh(`cp ../${n}.src ${n}`)));
    const failed = copies.filter((c) => c.code !== 0);
    assert.ok(failed.length > 0, 'every writer succeeded: the cluster was not filled');
    for (const c of failed) {
      assert.match(c.stderr, /No space left on device/);
      assert.doesNotMatch(c.stderr, /Input\/output error/);
    }
    for (const [i, n] of names.entries()) if (copies[i].code === 0) await mount.ok(`cmp ../${n}.src ${n}`);
    await mount.ok('sha256sum -c ../kept.sha');

    // Removing the files makes room well before --gc-delay: their chunks sit on full servers.
    await mount.ok(`rm -f ${names.join(' ')}`);
    await roomFor(3 * 8);
    await mount.ok('cp ../w0.src w0 && cmp ../w0.src w0 && rm w0');
  });

  it('a write past the free space fails with ENOSPC and changes nothing else; removing it makes room', async () => {
    // 40 MiB at three replicas does not fit in 3 x 24 MiB.
    const big = await mount.sh('dd if=/dev/urandom of=big.bin bs=1M count=40 conv=fsync');
    assert.notEqual(big.code, 0, 'dd of more than the cluster holds succeeded');
    assert.match(big.stderr, /No space left on device/);
    assert.doesNotMatch(big.stderr, /Input\/output error/);

    // What was there is intact, the namespace still takes changes, every chunkserver still serves.
    await mount.ok('sha256sum -c ../kept.sha && mkdir d && mv kept.bin d/ && touch d/empty && ls d');
    const report = await cluster.client.report();
    assert.equal(report.chunkservers.filter((cs) => cs.alive).length, 3, JSON.stringify(report.chunkservers));

    await mount.ok('rm big.bin');
    await roomFor(3 * 12);
    await mount.ok('head -c 12M /dev/urandom > ../again.src && cp ../again.src again.bin && cmp ../again.src again.bin');
    await mount.ok('cd d && sha256sum -c ../../kept.sha');
  });

  it('fallocate of more than the cluster has free fails with ENOSPC and leaves the file as it was; one that fits extends it', async () => {
    await roomFor(8); // the space of the files removed above back in the chunkservers' reports (the 2 MiB below times three)
    // Three replicas of every byte past the end: a third of the capacity and 4 MiB more never
    // fits, however much garbage the chunkservers delete meanwhile (a size from df's free
    // space once fitted by the time fallocate asked).
    const capacityMiB = Number((await mount.ok('df --output=size -B1M . | tail -1')).trim());
    const tooMuch = Math.floor(capacityMiB / 3) + 4;
    const refused = await mount.sh(`echo -n abc > fa.bin && fallocate -l ${tooMuch}M fa.bin`);
    assert.notEqual(refused.code, 0, `fallocate of ${tooMuch} MiB on a cluster of ${capacityMiB} MiB succeeded`);
    assert.match(refused.stderr, /fallocate: .*No space left on device/);
    assert.equal((await mount.ok('stat -c %s fa.bin')).trim(), '3');
    await mount.ok('fallocate -l 2M fa.bin');
    assert.equal((await mount.ok('stat -c %s fa.bin')).trim(), String(2 * MiB));
    await mount.ok('head -c 2M /dev/urandom > ../fa.src && dd if=../fa.src of=fa.bin bs=64k conv=notrunc,fsync status=none && cmp ../fa.src fa.bin');
    await mount.ok('rm fa.bin');
  });

  /**
   * Waits until df on the mount shows `mib` MiB free (the removed files' space back) and every
   * chunkserver reports a chunk's room on its disk, which placing a new chunk's replicas needs:
   * the total alone can be back while one server is still full (a 3-byte write then failed at
   * its close), and the bytes of its chunks can leave a chunk's room while its disk does not.
   */
  async function roomFor(mib: number): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const availMiB = Number((await mount.ok('df --output=avail -B1M . | tail -1')).trim());
      const servers = (await cluster.client.report()).chunkservers;
      if (availMiB >= mib + 3 && servers.every((cs) => cs.freeBytes >= CHUNK + 64 * 1024)) return; // a chunk and its header
      assert.ok(Date.now() < deadline, `df shows ${availMiB} MiB free 30 s after rm, under ${mib} MiB, or a server lacks a chunk's room: ${servers.map((cs) => cs.freeBytes).join(', ')} bytes free`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
});
