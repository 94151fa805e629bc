import { strict as assert } from 'assert';
import { promises as fsp } from 'fs';
import { TestCluster } from './helpers/test-cluster';
import { TestMount } from './helpers/test-mount';

/**
 * The requests the kernel sends the mount for what programs do, read from the mount's debug log
 * (one line per operation: `[mount] OP INODE ... ms`): round trips the mount asked the kernel
 * to leave out must not arrive.
 */
describe('mount: requests the kernel sends', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let mount: TestMount;

  before(async () => {
    cluster = await TestCluster.start('mount-requests', 3, [], [], { CHUNKFS_LOG: 'debug' });
    mount = await TestMount.start(cluster, 'mnt', [], { CHUNKFS_LOG: 'debug' });
  });
  after(async () => {
    await mount?.stop();
    await cluster?.stop();
  });

  /** The operations on inode `ino` the mount logged while `action` ran (and just after). */
  async function opsOn(ino: number, action: () => Promise<unknown>): Promise<string[]> {
    const before = mount.log().length;
    await action();
    await new Promise((r) => setTimeout(r, 300)); // release is sent after close(2) returns
    const ops: string[] = [];
    for (const m of mount.log().slice(before).matchAll(/\[mount\] (\w+)(?: \d+@\d+)? (\d+) /g)) {
      if (Number(m[2]) === ino) ops.push(m[1]);
    }
    return ops;
  }

  it('a read-only close sends no FLUSH; a close of a handle that may write does', async () => {
    await mount.ok('printf "some bytes" > f && cp f g');
    const { ino } = await fsp.stat(mount.at('f'));

    const reading = await opsOn(ino, () => mount.ok('cat f > /dev/null && head -c 3 f > /dev/null'));
    assert.deepEqual(reading.filter((op) => op === 'open').length, 2, `ops: ${reading}`);
    assert.deepEqual(reading.filter((op) => op === 'release').length, 2, `ops: ${reading}`);
    assert.ok(!reading.includes('flush'), `a read-only close flushed: ${reading}`);

    // Opened for writing, even with nothing written: close flushes (errors of buffered writes
    // are reported there).
    const writing = await opsOn(ino, () => mount.ok(`python3 -c 'import os; os.close(os.open("f", os.O_RDWR))'`));
    assert.ok(writing.includes('flush'), `a read-write close did not flush: ${writing}`);
    const appending = await opsOn(ino, () => mount.ok('printf " more" >> f'));
    assert.ok(appending.includes('flush'), `an appending close did not flush: ${appending}`);
    assert.equal(await fsp.readFile(mount.at('f'), 'utf8'), 'some bytes more');
  });

  it('a new file created for writing, exclusive or not, brings its first chunk with the create: no separate allocation', async () => {
    await mount.ok('mkdir -p made');
    const before = cluster.master.stderr().length;
    await mount.ok([
      `python3 -c 'open("made/by-python", "w").write("x" * 5000)'`, // O_CREAT|O_TRUNC
      'echo "shell" > made/by-shell', // likewise
      `python3 -c 'import os; fd = os.open("made/exclusive", os.O_CREAT | os.O_EXCL | os.O_WRONLY); os.write(fd, b"e"); os.close(fd)'`,
    ].join(' && '));
    const log = cluster.master.stderr().slice(before);
    for (const name of ['by-python', 'by-shell', 'exclusive']) {
      assert.match(log, new RegExp(`create \\{"path":"/made/${name}"[^\\n]*"allocateFirstChunk":true\\} ok`), `${name}: ${log}`);
      assert.doesNotMatch(log, new RegExp(`allocateChunk \\{[^\\n]*"path":"/made/${name}"`), `${name} needed an allocation of its own`);
    }
    // An existing file opened for writing and truncated gets its chunk from an allocation of its own.
    const again = cluster.master.stderr().length;
    await mount.ok(`python3 -c 'open("made/by-python", "w").write("again")'`);
    assert.equal(await fsp.readFile(mount.at('made/by-python'), 'utf8'), 'again');
    const allocation = /allocateChunk \{[^\n]*"path":"\/made\/by-python"/;
    for (let i = 0; i < 40 && !allocation.test(cluster.master.stderr().slice(again)); i++) await new Promise((r) => setTimeout(r, 50)); // the log comes through a pipe
    assert.match(cluster.master.stderr().slice(again), allocation);
    assert.equal(await fsp.readFile(mount.at('made/by-shell'), 'utf8'), 'shell\n');
    assert.equal((await cluster.client.fsck('/')).healthy, true);
  });

  it('a listing of 1,500 names through the mount is one page from the master (no cookie to follow)', async () => {
    await mount.ok('mkdir wide && cd wide && mkdir $(seq -f "d%g" 1 1500)');
    const before = cluster.master.stderr().length;
    assert.equal(await mount.ok('ls -f wide | wc -l'), '1502\n'); // with . and ..
    const listed = /readDir \{"path":"\/wide","cookie":"[^"]*"/;
    for (let i = 0; i < 40 && !listed.test(cluster.master.stderr().slice(before)); i++) await new Promise((r) => setTimeout(r, 50)); // the log comes through a pipe
    const calls = [...cluster.master.stderr().slice(before).matchAll(/readDir \{"path":"\/wide","cookie":"([^"]*)"/g)].map((m) => m[1]);
    assert.ok(calls.length > 0 && calls.every((cookie) => cookie === ''), `readDir calls by cookie: ${JSON.stringify(calls)}`);
  });

  it('listings of two large directories read at the same time each arrive whole', async () => {
    await mount.ok('mkdir both1 both2 && touch $(seq -f "both1/f%g" 1 1500) $(seq -f "both2/file-with-a-longer-name-%g" 1 1500)');
    assert.equal(await mount.ok('ls -f both1 | wc -l; ls -f both2 | wc -l'), '1502\n1502\n'); // with . and ..
    const sums = await mount.ok('ls -f both1 | sort | md5sum; ls -f both2 | sort | md5sum');
    // Several rounds of both at once, after a cache drop each (the kernel asks again, in replies of many records).
    const out = await mount.ok([
      'for round in 1 2 3 4; do',
      '  echo 2 > /proc/sys/vm/drop_caches',
      '  for i in 1 2 3; do ls -f both1 | sort | md5sum > /tmp/$$.a$i & ls -f both2 | sort | md5sum > /tmp/$$.b$i & done; wait',
      '  for i in 1 2 3; do cat /tmp/$$.a$i /tmp/$$.b$i; done',
      'done; rm -f /tmp/$$.*',
    ].join('\n'));
    assert.equal(out, sums.repeat(12));
  });

  it('a cache drop forgets inodes in batches; what a process still holds (an open file, its cwd) stays usable', async () => {
    await mount.ok('mkdir -p many/sub && for i in $(seq 1 300); do echo "$i" > many/f$i; done && echo held > many/sub/held');
    const known = (): number[] => [...mount.log().matchAll(/\[mount\] forget (\d+) inodes: (\d+) known/g)].map((m) => Number(m[2]));
    const before = known().length;
    // A child holds many/sub as its cwd and many/sub/held open across the drop, then uses both.
    const out = await mount.ok([
      `python3 -c '`,
      'import os, time',
      'os.chdir("many/sub"); fd = os.open("held", os.O_RDWR)',
      'open("/proc/sys/vm/drop_caches", "w").write("2")',
      'time.sleep(0.3)',
      'os.lseek(fd, 0, os.SEEK_END); os.write(fd, b"more\\n"); print(os.fstat(fd).st_size)',
      'open("made-after", "w").write("x"); print(sorted(os.listdir(".")))',
      `'`,
    ].join('\n'));
    assert.equal(out, "10\n['held', 'made-after']\n");
    for (let i = 0; i < 40 && known().length === before; i++) await new Promise((r) => setTimeout(r, 50));
    const after = known().slice(before);
    assert.ok(after.length > 0, 'no batch of forgets was logged');
    assert.ok(Math.min(...after) < 300, `the forgotten files are still known: ${after}`);
    assert.equal(await fsp.readFile(mount.at('many/sub/held'), 'utf8'), 'held\nmore\n');
    assert.equal((await fsp.readdir(mount.at('many'))).length, 301);
    assert.equal(await fsp.readFile(mount.at('many/f150'), 'utf8'), '150\n');
  });

  it('a sequential read comes mostly in 1 MiB requests: the kernel reads ahead as far as the mount asked (mount/kernel-read-ahead.ts)', async function () {
    if (mount.log().includes('stays at its default')) this.skip(); // it says so where /sys is read-only or it is not root
    await mount.ok('head -c 8388608 /dev/urandom > seq && sha256sum seq > seq.sum');
    const { ino } = await fsp.stat(mount.at('seq'));
    await new Promise((r) => setTimeout(r, 300)); // the log comes through a pipe, a line after each answer
    const before = mount.log().length;
    await mount.ok('sha256sum -c seq.sum'); // a new open drops the file's cached pages: every byte is asked for
    const sizes = (): number[] => [...mount.log().slice(before).matchAll(/\[mount\] read (\d+)@\d+ (\d+) /g)].filter((m) => Number(m[2]) === ino).map((m) => Number(m[1]));
    const sum = (): number => sizes().reduce((a, b) => a + b, 0);
    for (let i = 0; i < 40 && sum() < 8 * 1024 * 1024; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(sum(), 8 * 1024 * 1024, `reads: ${sizes()}`);
    // The kernel's window grows from the first reads (128, 256, 512 KiB): the rest come whole.
    assert.ok(sizes().filter((n) => n === 1024 * 1024).length >= 6 && Math.max(...sizes()) === 1024 * 1024, `reads: ${sizes()}`);
  });
});
