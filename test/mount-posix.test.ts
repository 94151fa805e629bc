import { strict as assert } from 'assert';
import { execFile } from 'child_process';
import { randomBytes } from 'crypto';
import { promises as fsp, constants as C } from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import { PosixFs } from '../client/fs/posix-fs';
import { cleanStaleMount } from '../mount/stale-mount';
import { maxFileSize } from '../server/common/file-size-limit';
import { PACKAGE_ROOT } from '../server/common/package-root';
import { prng } from './helpers/prng';
import { TestCluster } from './helpers/test-cluster';
import { TestMount } from './helpers/test-mount';

/** An fs call through the mount must fail with this errno code. */
async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: NodeJS.ErrnoException) => {
    assert.equal(err.code, code, err.message);
    return true;
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const execFileP = promisify(execFile);

describe('mount: POSIX semantics through a real FUSE mount', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let mnt: TestMount;
  const p = (rel: string) => mnt.at(rel);
  /** Files hidden in /.chunkfs-orphans, left out the mounts' markers (client/fs/orphan-dir.ts). */
  const hiddenFiles = async () => (await cluster.client.readdirAll('/.chunkfs-orphans')).filter((e) => e.name.startsWith('.chunkfs-hidden-'));
  /** The kernel sends RELEASE after close(2) has returned, so an orphan goes a moment later. */
  async function orphansCollected(what: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const left = await hiddenFiles();
      if (left.length === 0) return;
      if (Date.now() > deadline) assert.fail(`${what}: ${left.map((e) => e.name).join(', ')} still hidden`);
      await sleep(50);
    }
  }

  before(async () => {
    cluster = await TestCluster.start('mount-posix', 3, ['--chunk-size', String(1 << 20)]);
    mnt = await TestMount.start(cluster, 'mnt');
  });
  after(async () => {
    await mnt?.stop();
    await cluster?.stop();
  });

  it('reports errno for every namespace edge', async () => {
    await fsp.mkdir(p('e'));
    await fsp.writeFile(p('e/file'), 'x');
    await expectCode(fsp.stat(p('e/missing')), 'ENOENT');
    await expectCode(fsp.mkdir(p('e')), 'EEXIST');
    await expectCode(fsp.mkdir(p('e/missing/sub')), 'ENOENT');
    await expectCode(fsp.mkdir(p('e/file/sub')), 'ENOTDIR');
    await expectCode(fsp.open(p('e/file'), C.O_CREAT | C.O_EXCL | C.O_WRONLY), 'EEXIST');
    await expectCode(fsp.open(p('e'), 'w'), 'EISDIR');
    await expectCode(fsp.rmdir(p('e')), 'ENOTEMPTY');
    await expectCode(fsp.rmdir(p('e/file')), 'ENOTDIR');
    await expectCode(fsp.unlink(p('e')), 'EISDIR');
    await expectCode(fsp.readlink(p('e/file')), 'EINVAL');
    await expectCode(fsp.writeFile(p(`e/${'n'.repeat(256)}`), ''), 'ENAMETOOLONG');
    await fsp.writeFile(p(`e/${'n'.repeat(255)}`), 'long name');
    assert.equal(await fsp.readFile(p(`e/${'n'.repeat(255)}`), 'utf8'), 'long name');
    await fsp.mkdir(p('e/d'));
    await fsp.writeFile(p('e/d/inner'), '');
    await expectCode(fsp.rename(p('e/file'), p('e/d')), 'EISDIR');
    await fsp.mkdir(p('e/d2'));
    await expectCode(fsp.rename(p('e/d2'), p('e/d')), 'ENOTEMPTY');
    await expectCode(fsp.rename(p('e/d2'), p('e/file')), 'ENOTDIR');
    await expectCode(fsp.rename(p('e'), p('e/d/inside')), 'EINVAL');
    await expectCode(fsp.link(p('e/d'), p('e/dlink')), 'EPERM');
  });

  it('keeps names and symlink targets of any bytes, not only UTF-8, as a local directory does, across a checkpoint, a log replay and a remount', async () => {
    // Every byte but '/' and NUL, Latin-1, cut and overlong sequences, encoded surrogates, the
    // longest name (255 bytes) and target (4095), in names, targets and attribute names.
    const script = path.join(PACKAGE_ROOT, 'test', 'fixtures', 'byte-names.py');
    const local = (dir: string, seed: number) => execFileP('python3', [script, 'make', path.join(cluster.root, dir), String(seed)]);
    const [want7, want8] = [(await local('names-7', 7)).stdout, (await local('names-8', 8)).stdout];
    assert.equal(await mnt.ok(`python3 ${script} make names-7 7`), want7);
    await cluster.client.checkpoint(); // names-7 from the checkpoint, names-8 from the log
    assert.equal(await mnt.ok(`python3 ${script} make names-8 8`), want8);
    await cluster.restartMaster();
    await cluster.until((r) => r.chunkservers.filter((c) => c.alive).length === 3, 'chunkservers back after the restart');
    await mnt.kill();
    await mnt.restart();
    assert.equal(await mnt.ok(`python3 ${script} check names-7 7`), want7);
    assert.equal(await mnt.ok(`python3 ${script} check names-8 8`), want8);
    // The CLI prints a listing as the bytes the names stand for, and `get` writes a local file under them.
    const cli = (...args: string[]) =>
      execFileP(process.execPath, [path.join(PACKAGE_ROOT, 'dist/bin/chunkfs.js'), ...args, '--master', cluster.master.address], { encoding: 'buffer' });
    const listed = (await cli('ls', '/names-8/dir\uf7ff')).stdout.toString('latin1').trim().split('\n').sort();
    const localNames = await fsp.readdir(Buffer.from(`${cluster.root}/names-8/dir\xff`, 'latin1'), { encoding: 'buffer' });
    assert.deepEqual(listed, localNames.map((n) => n.toString('latin1')).sort());
    await cli('get', '/names-8/caf\uf7e9', cluster.root);
    assert.equal(await fsp.readFile(Buffer.from(`${cluster.root}/caf\xe9`, 'latin1'), 'latin1'), 'caf\xe9');
  });

  it('refuses writes and truncates past the largest file with EFBIG, writes up to it, and the master keeps such a file across a restart', async () => {
    // The largest file with this cluster's 1 MiB chunks: 256 GiB. A byte written at 2^62 once
    // ran the master out of memory (a chunk-list slot for every hole before it).
    const max = maxFileSize(1 << 20);
    const out = await mnt.ok(`python3 -c '
import errno, os, sys
MAX = ${max}
def efbig(call, *args):
    try:
        call(*args)
    except OSError as e:
        assert e.errno == errno.EFBIG, e
        return
    raise AssertionError(f"{call.__name__}{args[1:]} did not fail")
fd = os.open("largest", os.O_CREAT | os.O_RDWR, 0o644)
efbig(os.pwrite, fd, b"x", 2 ** 62)
efbig(os.pwrite, fd, b"x", MAX)
assert os.pwrite(fd, b"abcd", MAX - 2) == 2  # the part that fits
efbig(os.ftruncate, fd, MAX + 1)
efbig(os.truncate, "largest", 2 ** 62)
assert os.fstat(fd).st_size == MAX
os.close(fd)
with open("largest", "rb") as f:
    f.seek(MAX - 3)
    print(f.read())
'`);
    assert.equal(out.trim(), "b'\\x00ab'");
    await cluster.client.checkpoint(); // its chunk list from the checkpoint, then a write from the log
    await mnt.ok(`python3 -c 'import os; fd = os.open("largest", os.O_WRONLY); os.pwrite(fd, b"z", ${max - 4}); os.close(fd)'`);
    await cluster.restartMaster();
    await cluster.until((r) => r.chunkservers.filter((c) => c.alive).length === 3, 'chunkservers back after the restart');
    assert.equal((await cluster.client.getattr('/largest')).size, max);
    const tail = `python3 -c 'f = open("largest", "rb"); f.seek(${max - 4}); print(f.read())'`;
    assert.equal((await mnt.ok(tail)).trim(), "b'z\\x00ab'");
  });

  it('fallocate extends a file or keeps its size (KEEP_SIZE), moves mtime and ctime, and refuses hole punching, bad ranges, a read-only descriptor and the file-size limit', async () => {
    // 1 MiB chunks: the range crosses three chunk boundaries. "head" is still buffered when the
    // file grows under it.
    const max = maxFileSize(1 << 20);
    const out = await mnt.ok(`python3 -c '
import ctypes, errno, os, time
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE = 0x01, 0x02, 0x10
def fallocate(fd, mode, offset, length):
    if libc.fallocate(fd, mode, offset, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
def fails(code, call, *args):
    try:
        call(*args)
    except OSError as e:
        assert e.errno == code, (call.__name__, args[1:], e)
        return
    raise AssertionError(f"{call.__name__}{args[1:]} did not fail")
def later():
    time.sleep(0.02)
fd = os.open("fa", os.O_CREAT | os.O_RDWR, 0o644)
os.write(fd, b"head")
st0 = os.fstat(fd); later()
os.posix_fallocate(fd, 0, 3 * 2**20 + 5)
st1 = os.fstat(fd)
assert st1.st_size == 3 * 2**20 + 5, st1
assert st1.st_mtime_ns > st0.st_mtime_ns and st1.st_ctime_ns > st0.st_ctime_ns, (st0, st1)
assert os.pread(fd, 4, 0) == b"head" and os.pread(fd, 8, 2**20 - 4) == bytes(8)
later()
fallocate(fd, 0, 100, 200)  # inside the file: the size stays, the times move
st2 = os.fstat(fd)
assert st2.st_size == st1.st_size and st2.st_ctime_ns > st1.st_ctime_ns and st2.st_mtime_ns > st1.st_mtime_ns, (st1, st2)
fallocate(fd, KEEP_SIZE, 0, 8 * 2**20)
assert os.fstat(fd).st_size == st1.st_size
os.pwrite(fd, b"tail", 3 * 2**20 + 1)
st3 = os.fstat(fd); later()
for mode in (KEEP_SIZE | PUNCH_HOLE, ZERO_RANGE, ZERO_RANGE | KEEP_SIZE):
    fails(errno.EOPNOTSUPP, fallocate, fd, mode, 0, 4096)
fails(errno.EINVAL, fallocate, fd, 0, 0, 0)
fails(errno.EINVAL, fallocate, fd, 0, -1, 10)
fails(errno.EFBIG, fallocate, fd, 0, ${max} - 1, 2)
fails(errno.EFBIG, fallocate, fd, KEEP_SIZE, ${max}, 1)
fails(errno.EFBIG, fallocate, fd, 0, 2**62 - 2, 1)  # past what a double holds exactly
st4 = os.fstat(fd)
assert (st4.st_size, st4.st_mtime_ns, st4.st_ctime_ns) == (st3.st_size, st3.st_mtime_ns, st3.st_ctime_ns), (st3, st4)
os.close(fd)
ro = os.open("fa", os.O_RDONLY)
fails(errno.EBADF, os.posix_fallocate, ro, 0, 2**22)
os.close(ro)
print(os.stat("fa").st_size)
'`);
    assert.equal(out.trim(), String(3 * (1 << 20) + 5));
    // The size is the master's, the bytes are the file's: the other client sees both.
    assert.equal((await cluster.client.getattr('/fa')).size, 3 * (1 << 20) + 5);
    const expected = Buffer.alloc(3 * (1 << 20) + 5);
    expected.write('head', 0);
    expected.write('tail', 3 * (1 << 20) + 1);
    assert.ok((await fsp.readFile(p('fa'))).equals(expected), 'fa reads back as written, zeros between');

    // Past RLIMIT_FSIZE the caller gets SIGXFSZ and the file keeps its size (the kernel checks
    // it before asking the mount); under it the util-linux tool extends the file.
    const limited = await mnt.ok('(ulimit -f 1024; fallocate -l 2M fx; echo "exit $?") 2>&1');
    assert.match(limited, /File size limit exceeded[^]*exit 153/, 'SIGXFSZ expected');
    assert.equal((await fsp.stat(p('fx'))).size, 0);
    await mnt.ok('fallocate -l 1M fx && fallocate -n -o 1M -l 1M fx');
    assert.equal((await fsp.stat(p('fx'))).size, 1 << 20);
    const punch = await mnt.sh('fallocate -p -o 0 -l 4096 fx');
    assert.notEqual(punch.code, 0);
    assert.match(punch.stderr, /unsupported|not supported/); // util-linux names the mode
  });

  it('keeps nlink right for directories and hard links', async () => {
    await fsp.mkdir(p('n'));
    assert.equal((await fsp.stat(p('n'))).nlink, 2);
    await fsp.mkdir(p('n/a'));
    await fsp.mkdir(p('n/b'));
    assert.equal((await fsp.stat(p('n'))).nlink, 4);
    await fsp.rmdir(p('n/b'));
    assert.equal((await fsp.stat(p('n'))).nlink, 3);
    await fsp.writeFile(p('n/f'), 'data');
    await fsp.link(p('n/f'), p('n/g'));
    const [f, g] = [await fsp.stat(p('n/f')), await fsp.stat(p('n/g'))];
    assert.equal(f.nlink, 2);
    assert.equal(f.ino, g.ino, 'hard links share an inode number (use_ino)');
    await fsp.unlink(p('n/f'));
    assert.equal((await fsp.stat(p('n/g'))).nlink, 1);
    assert.equal(await fsp.readFile(p('n/g'), 'utf8'), 'data');
  });

  it('shows writes still buffered through a hard link made meanwhile: its size, and fstat and reads through the open descriptor, also once the first name is gone', async () => {
    const data = randomBytes(3 << 20);
    const h = await fsp.open(p('buffered-link'), 'w+');
    await h.write(data, 0, data.length, 0); // buffered in the mount
    await fsp.link(p('buffered-link'), p('buffered-link.2'));
    // BUG: the link's attributes (size 0 at the master) reached the kernel unmerged with the
    // buffered writes, and the descriptor then read 0 bytes.
    assert.equal((await fsp.stat(p('buffered-link.2'))).size, data.length);
    assert.equal((await h.stat()).size, data.length);
    const seen = Buffer.alloc(data.length);
    assert.equal((await h.read(seen, 0, data.length, 0)).bytesRead, data.length);
    assert.ok(seen.equals(data));
    await fsp.unlink(p('buffered-link'));
    const after = await h.stat();
    assert.equal(after.size, data.length);
    assert.equal(after.nlink, 1);
    await h.sync();
    assert.equal((await h.read(seen.fill(0), 0, data.length, 0)).bytesRead, data.length);
    assert.ok(seen.equals(data));
    await h.close();
    assert.ok((await fsp.readFile(p('buffered-link.2'))).equals(data));
  });

  it('a file open by one hard link is the same open file by another: an open there reads the buffered writes, a truncate or utimens there comes after them', async () => {
    const data = randomBytes(100_000);
    const h = await fsp.open(p('linked-a'), 'w+');
    await h.write(data, 0, data.length, 0); // buffered in the mount
    await fsp.link(p('linked-a'), p('linked-b'));
    // BUG: an open by the other name made a second open file, empty, with the master's size (0).
    const other = await fsp.open(p('linked-b'), 'r');
    assert.equal((await other.stat()).size, data.length);
    assert.ok((await other.readFile()).equals(data));
    await other.close();
    // BUG: the kernel goes by the name it learnt last; a truncate by it went to the master
    // alone, and the buffered writes landed after it.
    await fsp.truncate(p('linked-b'), 7);
    await h.write(Buffer.from('tail'), 0, 4, 7); // buffered again: the times set next must stay
    await fsp.utimes(p('linked-b'), 1_000, 2_000);
    await h.sync();
    const synced = await h.stat();
    assert.deepEqual([synced.size, synced.mtimeMs], [11, 2_000_000]);
    // Also once the name it was opened by is gone (the open file then lives under a hidden name).
    await h.write(data, 0, data.length, 0);
    const h2 = await fsp.open(p('linked-a'), 'r+');
    await fsp.rename(p('linked-b'), p('linked-c'));
    await fsp.writeFile(p('linked-d'), 'x');
    await fsp.rename(p('linked-d'), p('linked-a')); // over the name both descriptors were opened by
    await fsp.truncate(p('linked-c'), 5);
    await h.close();
    await h2.close();
    assert.ok((await fsp.readFile(p('linked-c'))).equals(data.subarray(0, 5)));
    await orphansCollected('after the last close');
  });

  it('fstat of a directory or FIFO removed while open (rmdir, unlink, or renamed over) shows it with no link, as on a local disk', async () => {
    const out = await mnt.ok(`umask 022 && python3 -c '
import os
os.makedirs("rmd/a"); os.makedirs("rmd/b"); os.mkdir("rmd/c"); os.mkfifo("rmd/fifo", 0o640)
fa = os.open("rmd/a", os.O_RDONLY | os.O_DIRECTORY); fb = os.open("rmd/b", os.O_RDONLY | os.O_DIRECTORY)
ff = os.open("rmd/fifo", os.O_RDWR)
os.rmdir("rmd/a"); os.rename("rmd/c", "rmd/b"); os.unlink("rmd/fifo")
os.chdir("rmd"); os.mkdir("cwd"); os.chdir("cwd"); os.rmdir("../cwd")
print([(oct(s.st_mode), s.st_nlink) for s in (os.fstat(fa), os.fstat(fb), os.stat("."), os.fstat(ff))], os.listdir("."))
'`);
    // BUG: ENOENT for the directory renamed over and for the FIFO (the kernel asks for their
    // attributes, and they have no name left).
    assert.equal(out.trim(), "[('0o40755', 0), ('0o40755', 0), ('0o40755', 0), ('0o10640', 0)] []");
  });

  it('agrees with a local directory on random sequences of calls (errno, bytes, type, mode, link count, size)', async () => {
    const script = path.join(PACKAGE_ROOT, 'test', 'fixtures', 'posix-diff.py');
    // Seeds 4, 9 and 18 failed before the fixes above (of the hard links of an open file, and of
    // fstat of a directory or FIFO removed while open).
    for (const seed of [1, 4, 9, 18]) {
      const [local, mounted] = [path.join(cluster.root, `posix-diff-${seed}`), p(`posix-diff-${seed}`)];
      await fsp.mkdir(local);
      await fsp.mkdir(mounted);
      const out = await mnt.ok(`umask 022 && python3 ${script} ${local} ${mounted} ${seed} 3000`);
      assert.equal(out.trim(), 'same after 3000 calls');
    }
  });

  it('updates mtime and ctime as POSIX says', async () => {
    await fsp.mkdir(p('t'));
    const dir0 = await fsp.stat(p('t'));
    await sleep(20);
    await fsp.writeFile(p('t/f'), 'one');
    const dir1 = await fsp.stat(p('t'));
    assert.ok(dir1.mtimeMs > dir0.mtimeMs, 'creating an entry changes the directory mtime');
    const f0 = await fsp.stat(p('t/f'));
    await sleep(20);
    const h = await fsp.open(p('t/f'), 'r+');
    await h.write(Buffer.from('X'), 0, 1, 1);
    await h.close();
    const f1 = await fsp.stat(p('t/f'));
    assert.ok(f1.mtimeMs > f0.mtimeMs, 'an overwrite changes mtime');
    assert.equal(f1.size, 3);
    await sleep(20);
    await fsp.chmod(p('t/f'), 0o600);
    const f2 = await fsp.stat(p('t/f'));
    assert.ok(f2.ctimeMs > f1.ctimeMs, 'chmod changes ctime');
    assert.equal(f2.mtimeMs, f1.mtimeMs, 'chmod leaves mtime');
    assert.equal(f2.mode & 0o7777, 0o600);
    await fsp.utimes(p('t/f'), new Date('2001-02-03T04:05:06.789Z'), new Date('2002-03-04T05:06:07.891Z'));
    const f3 = await fsp.stat(p('t/f'));
    assert.equal(f3.atime.toISOString(), '2001-02-03T04:05:06.789Z');
    assert.equal(f3.mtime.toISOString(), '2002-03-04T05:06:07.891Z');
  });


  it('O_TRUNC of an empty file moves its times; of a file open with buffered writes, drops them', async () => {
    await fsp.mkdir(p('tr'));
    await fsp.writeFile(p('tr/empty'), '');
    const e0 = await fsp.stat(p('tr/empty'));
    await sleep(20);
    for (const flags of [C.O_WRONLY | C.O_TRUNC, C.O_WRONLY | C.O_CREAT | C.O_TRUNC]) {
      await (await fsp.open(p('tr/empty'), flags)).close();
      const e1 = await fsp.stat(p('tr/empty'));
      assert.ok(e1.mtimeMs > e0.mtimeMs && e1.ctimeMs > e0.ctimeMs, `O_TRUNC (flags ${flags}) of an empty file updates mtime and ctime`);
    }
    // BUG: a second open with O_TRUNC of a file already open here did not truncate at all, and
    // the first handle's buffered bytes landed afterwards.
    for (const flags of [C.O_WRONLY | C.O_TRUNC, C.O_WRONLY | C.O_CREAT | C.O_TRUNC]) {
      const writer = await fsp.open(p('tr/open'), 'w');
      await writer.write(Buffer.from('buffered bytes'), 0, 14, 0);
      const again = await fsp.open(p('tr/open'), flags);
      assert.equal((await again.stat()).size, 0, `flags ${flags}`);
      await again.close();
      await writer.close();
      assert.equal((await fsp.stat(p('tr/open'))).size, 0, `flags ${flags}`);
      assert.equal(await fsp.readFile(p('tr/open'), 'utf8'), '');
    }
    // Linux truncates on O_TRUNC whatever the access mode (write permission is checked): a
    // read-only open with O_TRUNC empties the file, seen by the next open too.
    await fsp.writeFile(p('tr/ro'), 'some bytes');
    const ro = await fsp.open(p('tr/ro'), C.O_RDONLY | C.O_TRUNC);
    assert.equal((await ro.stat()).size, 0);
    await ro.close();
    assert.equal(await fsp.readFile(p('tr/ro'), 'utf8'), '');
    assert.equal((await fsp.stat(p('tr/ro'))).size, 0);
  });

  it('keeps times set on a file with buffered writes (tar, cp -p) and moves mtime on a later write', async () => {
    const atime = new Date('2003-01-02T03:04:05.678Z');
    const mtime = new Date('2004-05-06T07:08:09.123Z');
    const data = Buffer.alloc(150_000, 7);
    // Written and stamped before close: the times must stay over the data landing.
    const h = await fsp.open(p('times-new'), 'wx');
    await h.write(data);
    await h.utimes(atime, mtime);
    assert.equal((await h.stat()).mtime.toISOString(), mtime.toISOString());
    await h.close();
    let st = await fsp.stat(p('times-new'));
    assert.equal(st.mtime.toISOString(), mtime.toISOString());
    assert.equal(st.atime.toISOString(), atime.toISOString());
    assert.equal(st.size, data.length);
    assert.ok((await fsp.readFile(p('times-new'))).equals(data));

    // An overwrite inside the file (no new end to record), then times.
    const r = await fsp.open(p('times-new'), 'r+');
    await r.write(Buffer.from('abc'), 0, 3, 1000);
    await r.utimes(atime, mtime);
    await r.close();
    st = await fsp.stat(p('times-new'));
    assert.equal(st.mtime.toISOString(), mtime.toISOString());
    assert.equal((await fsp.readFile(p('times-new'))).toString('latin1', 1000, 1003), 'abc');

    // A write after the times moves mtime to now again.
    const before = Date.now();
    const w = await fsp.open(p('times-new'), 'r+');
    await w.write(Buffer.from('more'), 0, 4, data.length);
    await w.utimes(atime, mtime);
    await w.write(Buffer.from('last'), 0, 4, data.length + 4);
    await w.close();
    st = await fsp.stat(p('times-new'));
    assert.ok(st.mtimeMs >= before - 1000, `mtime ${st.mtime.toISOString()} is from before the last write`);
    assert.equal(st.size, data.length + 8);
  });
  it('enforces permissions for other users and gives new inodes the caller as owner', async () => {
    await fsp.mkdir(p('perm'), { mode: 0o777 });
    await fsp.chmod(p('perm'), 0o777);
    await fsp.writeFile(p('perm/secret'), 'root only', { mode: 0o600 });
    await fsp.chmod(p('perm/secret'), 0o600);
    const asNobody = (cmd: string) => mnt.sh(`setpriv --reuid=65534 --regid=65534 --clear-groups bash -c ${JSON.stringify(cmd)}`, p('perm'));
    const denied = await asNobody('cat secret');
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /Permission denied/);
    assert.equal((await asNobody('echo mine > own && stat -c %u:%g own')).stdout.trim(), '65534:65534');
    assert.equal((await asNobody('mkdir owndir && stat -c %u:%g owndir')).stdout.trim(), '65534:65534');
    assert.notEqual((await asNobody('chmod 644 secret')).code, 0, 'only the owner may chmod');
    await fsp.chown(p('perm/secret'), 65534, 65534);
    assert.equal((await asNobody('cat secret')).stdout, 'root only');
  });

  it('matches a model under random writes, reads and truncates across chunk boundaries', async () => {
    const rand = prng(7);
    const model = Buffer.alloc(0);
    let expected = model;
    const h = await fsp.open(p('random.bin'), 'w+');
    try {
      for (let step = 0; step < 120; step++) {
        const r = rand();
        if (r < 0.6) {
          const offset = Math.floor(rand() * 3.5 * (1 << 20));
          const data = Buffer.alloc(1 + Math.floor(rand() * 300_000), Math.floor(rand() * 256));
          await h.write(data, 0, data.length, offset);
          if (offset + data.length > expected.length) expected = Buffer.concat([expected, Buffer.alloc(offset + data.length - expected.length)]);
          data.copy(expected, offset);
        } else if (r < 0.75) {
          const size = Math.floor(rand() * 4 * (1 << 20));
          await h.truncate(size);
          expected = size <= expected.length ? expected.subarray(0, size) : Buffer.concat([expected, Buffer.alloc(size - expected.length)]);
        } else {
          const offset = Math.floor(rand() * (expected.length + 10));
          const length = Math.floor(rand() * 400_000);
          const buf = Buffer.alloc(length);
          const { bytesRead } = await h.read(buf, 0, length, offset);
          const want = expected.subarray(Math.min(offset, expected.length), Math.min(offset + length, expected.length));
          assert.equal(bytesRead, want.length, `read at ${offset} step ${step}`);
          assert.ok(buf.subarray(0, bytesRead).equals(want), `bytes at ${offset} step ${step}`);
        }
        if (step % 40 === 39) await h.sync();
      }
      assert.equal((await h.stat()).size, expected.length);
    } finally {
      await h.close();
    }
    assert.ok((await fsp.readFile(p('random.bin'))).equals(expected), 'whole file after close');
    // Through the master and chunkservers directly, not the mount's caches.
    assert.ok((await cluster.readAll('/random.bin')).equals(expected), 'whole file through the client library');
  });

  it('reads see the writes buffered or being flushed without waiting for them to land', async () => {
    // O_DIRECT: every read reaches the mount, none is answered from the kernel's page cache. The
    // master's size of the file shows whether a flush has happened.
    const MiB = 1 << 20;
    const original = randomBytes(2 * MiB);
    await fsp.writeFile(p('overlay.bin'), original);
    const masterSize = async () => (await cluster.client.getattr('/overlay.bin')).size;
    const h = await fsp.open(p('overlay.bin'), 'r+');
    const d = await fsp.open(p('overlay.bin'), C.O_RDONLY | C.O_DIRECT);
    const readAt = async (offset: number, length: number) => {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await d.read(buf, 0, length, offset);
      return buf.subarray(0, bytesRead);
    };
    let expected = original;
    try {
      const overwrite = Buffer.alloc(4096, 0xb1);
      const appended = Buffer.alloc(4096, 0xc2);
      await h.write(overwrite, 0, overwrite.length, 100 * 1024);
      await h.write(appended, 0, appended.length, 2 * MiB);
      assert.ok((await readAt(1.5 * MiB, 8192)).equals(original.subarray(1.5 * MiB, 1.5 * MiB + 8192)));
      assert.ok((await readAt(MiB - 100, 200)).equals(original.subarray(MiB - 100, MiB + 100)), 'across a chunk boundary');
      // Over the buffered overwrite, and past the size the master has (a hole before it).
      assert.ok((await readAt(96 * 1024, 8192)).equals(Buffer.concat([original.subarray(96 * 1024, 100 * 1024), overwrite])));
      await h.write(appended, 0, 100, 3 * MiB);
      assert.ok((await readAt(2 * MiB - 10, 4106)).equals(Buffer.concat([original.subarray(2 * MiB - 10), appended])));
      assert.ok((await readAt(3 * MiB - 10, 200)).equals(Buffer.concat([Buffer.alloc(10), appended.subarray(0, 100)])));
      assert.equal(await masterSize(), 2 * MiB, 'a read flushed the buffer');

      // 128 scattered writes: the last sends them in the background (MAX_BUFFERED_EXTENTS). Reads
      // of them while they are on their way see them.
      const scattered = Array.from({ length: 128 }, (_, k) => Buffer.alloc(4096, k + 1));
      for (const [k, data] of scattered.entries()) await h.write(data, 0, data.length, k * 16 * 1024);
      assert.ok((await readAt(127 * 16 * 1024, 4096)).equals(scattered[127]), 'a write being flushed');
      assert.ok((await readAt(0, 4096)).equals(scattered[0]));

      // Random writes through the file and reads through the O_DIRECT descriptor, against a
      // model: the reads must never miss a write, landed, landing or buffered. Every 128
      // scattered writes start a flush in the background, and reads near the latest writes
      // come while it is in flight.
      const rand = prng(11);
      expected = Buffer.concat([original, Buffer.alloc(3 * MiB + 100 - original.length)]);
      appended.copy(expected, 2 * MiB);
      overwrite.copy(expected, 100 * 1024);
      appended.copy(expected, 3 * MiB, 0, 100);
      scattered.forEach((data, k) => data.copy(expected, k * 16 * 1024));
      const recent: number[] = [];
      for (let step = 0; step < 1500; step++) {
        if (rand() < 0.6) {
          const offset = Math.floor(rand() * (expected.length - 20_000));
          const data = randomBytes(1 + Math.floor(rand() * 16_384));
          await h.write(data, 0, data.length, offset);
          data.copy(expected, offset);
          recent.push(offset);
          if (recent.length > 200) recent.shift();
        } else {
          const near = rand() < 0.7 && recent.length > 0 ? recent[Math.floor(rand() * recent.length)] : Math.floor(rand() * expected.length);
          const offset = Math.max(0, near - Math.floor(rand() * 4096));
          const length = 1 + Math.floor(rand() * 32_768);
          const got = await readAt(offset, length);
          assert.ok(got.equals(expected.subarray(offset, offset + length)), `read of ${length} at ${offset}, step ${step}`);
        }
      }
      await h.sync();
      assert.equal(await masterSize(), expected.length);
    } finally {
      await d.close();
      await h.close();
    }
    assert.ok((await cluster.readAll('/overlay.bin')).equals(expected), 'whole file through the client library');
  });

  it('fsx-style random I/O with mmap writes and reads, fsyncs and reopens matches a model', async () => {
    // From another process (Python): writes through mmap reach the mount as page writeback.
    const script = path.join(PACKAGE_ROOT, 'test', 'fixtures', 'fsx.py');
    for (const seed of [1, 2]) {
      const out = await mnt.ok(`python3 ${script} fsx-${seed}.bin ${seed} 250 ${1 << 20}`);
      assert.equal(out.trim(), 'ok');
    }
  });

  it('keeps a file unlinked or renamed over while open readable and writable until closed', async () => {
    await fsp.writeFile(p('victim'), 'old contents');
    const h = await fsp.open(p('victim'), 'r+');
    await fsp.unlink(p('victim'));
    await expectCode(fsp.stat(p('victim')), 'ENOENT');
    assert.ok(!(await fsp.readdir(p('.'))).some((n) => n.startsWith('.chunkfs-hidden')), 'not listed while open');
    assert.equal((await h.stat()).size, 12, 'fstat still answers for the unlinked file');
    assert.equal((await h.stat()).nlink, 0, 'an unlinked file has no links');
    assert.equal((await h.read(Buffer.alloc(64), 0, 64, 0)).bytesRead, 12);
    await h.write(Buffer.from('NEW'), 0, 3, 0);
    const back = Buffer.alloc(12);
    await h.read(back, 0, 12, 0);
    assert.equal(back.toString(), 'NEW contents');
    await h.close();
    await orphansCollected('removed after its last close');

    // Its directory may go while it is open, as on a local file system (rm -rf beside a process
    // holding a file there), and another mount's listing shows nothing of it either.
    await fsp.mkdir(p('gone'));
    await fsp.writeFile(p('gone/held'), 'held');
    const g = await fsp.open(p('gone/held'), 'r+');
    await fsp.unlink(p('gone/held'));
    await fsp.rmdir(p('gone'));
    await g.write(Buffer.from('HELD'), 0, 4, 0);
    const { bytesRead, buffer } = await g.read(Buffer.alloc(8), 0, 8, 0);
    assert.equal(buffer.subarray(0, bytesRead).toString(), 'HELD');
    const other = await TestMount.start(cluster, 'mnt-other');
    try {
      assert.ok(!(await fsp.readdir(other.dir)).some((n) => n.startsWith('.chunkfs')), 'nothing hidden listed in the root');
      assert.ok(!(await fsp.readdir(mnt.dir)).some((n) => n.startsWith('.chunkfs')), 'nor here');
    } finally {
      await other.stop();
    }
    await g.close();
    await orphansCollected('removed after its last close, its directory gone');

    await fsp.writeFile(p('target'), 'first');
    await fsp.writeFile(p('replacement'), 'second');
    const t = await fsp.open(p('target'), 'r');
    await fsp.rename(p('replacement'), p('target'));
    assert.equal(await fsp.readFile(p('target'), 'utf8'), 'second');
    const old = Buffer.alloc(5);
    await t.read(old, 0, 5, 0);
    assert.equal(old.toString(), 'first', 'the open handle still reads the replaced file');
    assert.equal((await t.stat()).nlink, 0, 'the replaced file has no links');
    await t.close();
    await orphansCollected('the replaced file removed after its close');

    // A rename that fails leaves an open target where it was.
    const kept = await fsp.open(p('target'), 'r');
    await expectCode(fsp.rename(p('no-such-source'), p('target')), 'ENOENT');
    await fsp.mkdir(p('a-dir'));
    await expectCode(fsp.rename(p('a-dir'), p('target')), 'ENOTDIR');
    await kept.close();
    assert.equal(await fsp.readFile(p('target'), 'utf8'), 'second');

    await fsp.writeFile(p('twice'), 'linked');
    await fsp.link(p('twice'), p('twice-2'));
    const l = await fsp.open(p('twice'), 'r');
    await fsp.unlink(p('twice'));
    assert.equal((await l.stat()).nlink, 1, 'one of two links gone');
    await l.close();
    assert.equal((await fsp.stat(p('twice-2'))).nlink, 1);
    assert.equal(await fsp.readFile(p('twice-2'), 'utf8'), 'linked');
  });

  it('removes a file unlinked while its last handle is released, once both are done (no orphan left, listings still answered)', async () => {
    // The mount's logic without the kernel, which could not be made to interleave the two.
    const fs = new PosixFs(cluster.client, cluster.peers, { attrCacheSec: 1, writeBufferBytes: 1 << 20, readAheadBytes: 1 << 20, orphanGraceSec: 900 });
    try {
      await fs.mkdir('/race', 0o755, { uid: 0, gid: 0 });
      const handle = await fs.create('/race/f', 0o644, C.O_CREAT | C.O_EXCL | C.O_WRONLY, { uid: 0, gid: 0 });
      const unlinking = fs.unlink('/race/f'); // waits on the master to hide the file...
      await fs.release(handle); // ...while its last handle goes
      await unlinking;
      assert.equal((await fs.list('/race')).length, 0);
      assert.equal((await fs.list('/')).length, (await cluster.client.readdirAll('/')).length - 1, 'the root lists all but the orphans');
      assert.deepEqual(await hiddenFiles(), []);
    } finally {
      await fs.closeAll();
    }
  });

  it('lists a directory whole, and afresh after rewinddir', async () => {
    await fsp.mkdir(p('listed'));
    const names = Array.from({ length: 300 }, (_v, i) => `entry-${i}`);
    for (const n of names) await fsp.writeFile(p(`listed/${n}`), '');
    // Perl's rewinddir is rewinddir(3); the file is made between the two reads.
    const script = 'opendir(D, $ARGV[0]) or die; my @a = readdir D; open(F, ">", "$ARGV[0]/late") or die; close F; '
      + 'rewinddir D; my @b = readdir D; print join(",", sort @a), "\n", join(",", sort @b), "\n"';
    const { stdout } = await execFileP('perl', ['-e', script, p('listed')]);
    const [first, second] = stdout.trim().split('\n').map((l) => l.split(','));
    assert.deepEqual(first, ['.', '..', ...names].sort());
    assert.deepEqual(second, ['.', '..', ...names, 'late'].sort());
  });

  it('appends with O_APPEND from two handles without losing a write', async () => {
    const a = await fsp.open(p('log'), 'a');
    const b = await fsp.open(p('log'), 'a');
    for (let i = 0; i < 50; i++) {
      await a.write(`a${i}\n`);
      await b.write(`b${i}\n`);
    }
    await a.close();
    await b.close();
    const lines = (await fsp.readFile(p('log'), 'utf8')).trim().split('\n');
    assert.equal(lines.length, 100);
    assert.deepEqual(lines.slice(0, 4), ['a0', 'b0', 'a1', 'b1']);
  });

  it('serves a tree deeper than PATH_MAX to a process working inside it by relative paths', async () => {
    // 24 levels of 255-byte names: 6 KiB below the mount, each step reached relative to the last.
    const script = [
      'import os',
      "os.mkdir('deep'); os.chdir('deep')",
      "for i in range(24): os.mkdir(chr(97 + i) * 255); os.chdir(chr(97 + i) * 255)",
      "open('f', 'w').write('bottom')",
      "os.rename('f', 'g'); os.symlink('g', 'l'); os.link('g', 'h')",
      "assert open('l').read() == 'bottom' and os.stat('h').st_nlink == 2",
      "print(len(os.getcwd().encode()) > 6000, sorted(os.listdir('.')))",
    ].join('\n');
    await fsp.writeFile(path.join(cluster.root, 'deep.py'), script);
    assert.equal((await mnt.ok(`python3 ${path.join(cluster.root, 'deep.py')}`)).trim(), "True ['g', 'h', 'l']");
    await mnt.ok('rm -rf deep');
    await expectCode(fsp.stat(p('deep')), 'ENOENT');
  });

  it('renameat2 RENAME_EXCHANGE swaps two names atomically (an open file follows, a directory takes its `..` link along) and survives a log replay', async () => {
    const script = path.join(cluster.root, 'exchange.py');
    await fsp.writeFile(script, `
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
def renameat2(a, b, flags):
    ok = libc.renameat2(-100, a.encode(), -100, b.encode(), flags) == 0
    return 'ok' if ok else errno.errorcode[ctypes.get_errno()]
def ino(p): return os.lstat(p).st_ino
os.makedirs('xp/p/d/sub'); os.makedirs('xp/q')
open('xp/p/d/x', 'w').write('x')
open('xp/p/a', 'w').write('AAAA'); open('xp/q/b', 'w').write('BB')
fd = os.open('xp/p/a', os.O_WRONLY)
os.pwrite(fd, b'1', 0)
a, b, ctime = ino('xp/p/a'), ino('xp/q/b'), os.lstat('xp/q/b').st_ctime_ns
print('files', renameat2('xp/p/a', 'xp/q/b', 2))
os.pwrite(fd, b'2', 1); os.fsync(fd); os.close(fd)
print(open('xp/p/a').read(), open('xp/q/b').read(), ino('xp/p/a') == b, ino('xp/q/b') == a, os.lstat('xp/p/a').st_ctime_ns > ctime)
links = lambda: [os.lstat(d).st_nlink for d in ('xp/p', 'xp/q')]
before = links()
print('dir with file', renameat2('xp/p/d', 'xp/q/b', 2), before, links())
print(sorted(os.listdir('xp/q/b')), open('xp/q/b/x').read(), open('xp/p/d').read(), sorted(os.listdir('xp/p')))
print('missing', renameat2('xp/p/a', 'xp/p/none', 2), 'own child', renameat2('xp/q/b', 'xp/q/b/sub', 2),
      'whiteout', renameat2('xp/p/a', 'xp/p/w', 4), 'both flags', renameat2('xp/p/a', 'xp/p/d', 3))
print(sorted(os.listdir('xp/p')), open('xp/p/a').read(), open('xp/p/d').read())
`);
    const out = (await mnt.ok(`python3 ${script}`)).trim().split('\n');
    assert.deepEqual(out, [
      'files ok',
      'BB 12AA True True True',
      'dir with file ok [3, 2] [2, 3]',
      "['sub', 'x'] x 12AA ['a', 'd']",
      'missing ENOENT own child EINVAL whiteout EINVAL both flags EINVAL',
      "['a', 'd'] BB 12AA",
    ]);
    await cluster.restartMaster(); // from the log: each record says it was an exchange
    assert.deepEqual((await cluster.client.readdirAll('/xp/q/b')).map((e) => e.name).sort(), ['sub', 'x']);
    assert.equal((await mnt.ok('cat xp/p/a xp/p/d')).trim(), 'BB12AA');
  });

  it('makes FIFOs, sockets and device nodes that work as such and survive a checkpoint, a log replay and a remount', async () => {
    await fsp.mkdir(p('sp'));
    await mnt.ok('umask 022 && mkfifo -m 640 sp/fifo && mknod sp/tty c 4 1 && mknod -m 600 sp/disk b 8 17');
    await cluster.client.checkpoint(); // the above from the checkpoint, the rest from the log
    await mnt.ok(`umask 022 && python3 -c "import socket; socket.socket(socket.AF_UNIX).bind('sp/sock')"`);
    const expected = [
      'sp/fifo fifo 640 0:0', 'sp/tty character special file 644 4:1', 'sp/disk block special file 600 8:11', 'sp/sock socket 755 0:0',
    ].join('\n');
    const described = () => mnt.ok('stat -c "%n %F %a %t:%T" sp/fifo sp/tty sp/disk sp/sock');
    assert.equal((await described()).trim(), expected);
    // The kernel, not ChunkFS, carries a FIFO's bytes: it only has to be a FIFO here.
    const [, read] = await Promise.all([mnt.ok('echo through-the-pipe > sp/fifo'), mnt.ok('cat sp/fifo')]);
    assert.equal(read.trim(), 'through-the-pipe');
    await mnt.ok('ln sp/fifo sp/fifo-link && mv sp/fifo-link fifo-moved && chmod 604 fifo-moved && chown 7:8 fifo-moved');
    assert.equal((await mnt.ok('stat -c "%F %a %u:%g %h" sp/fifo')).trim(), 'fifo 604 7:8 2');
    await fsp.unlink(p('fifo-moved'));
    assert.equal((await fsp.lstat(p('sp/fifo'))).nlink, 1);
    await cluster.restartMaster();
    await cluster.until((r) => r.chunkservers.filter((c) => c.alive).length === 3, 'chunkservers back after the restart');
    await mnt.kill();
    await mnt.restart();
    assert.equal((await described()).trim(), expected.replace('fifo 640', 'fifo 604'));
    assert.deepEqual((await fsp.readdir(p('sp'))).sort(), ['disk', 'fifo', 'sock', 'tty']);
  });

  it('finds a dead mount dead although the kernel still answers stat of its root from its cache', async () => {
    const cached = await TestMount.start(cluster, 'mnt-cached', ['--attr-timeout', '60']);
    const mounted = async () => (await fsp.readFile('/proc/self/mounts', 'utf8')).split('\n').some((l) => l.split(' ')[1] === cached.dir);
    try {
      assert.equal(await cleanStaleMount(cached.dir), false, 'a live mount is left alone');
      await fsp.stat(cached.dir); // the root's attributes, now cached for 60 s
      await cached.kill();
      await fsp.stat(cached.dir); // answered from the cache: a stat cannot tell this mount is dead
      assert.equal(await cleanStaleMount(cached.dir), true, 'found dead (statfs reaches the mount) and detached');
      assert.ok(!(await mounted()));
      await cached.restart();
      await fsp.writeFile(cached.at('alive'), 'yes');
      assert.equal(await fsp.readFile(cached.at('alive'), 'utf8'), 'yes');
    } finally {
      await cached.stop();
    }
  });

  it('reports the cluster capacity in statfs and survives a remount', async () => {
    const st = await fsp.statfs(mnt.dir);
    const report = await cluster.client.report();
    const capacity = report.chunkservers.reduce((s, c) => s + Number(c.capacityBytes), 0);
    assert.ok(Math.abs(st.blocks * st.bsize - capacity) <= st.bsize * 2, `${st.blocks * st.bsize} vs ${capacity}`);
    await fsp.writeFile(p('persist'), 'still here');
    await mnt.kill();
    await mnt.restart(); // the dead mount point is cleaned up first
    assert.equal(await fsp.readFile(p('persist'), 'utf8'), 'still here');
  });
});
