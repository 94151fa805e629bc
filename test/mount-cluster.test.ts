import { strict as assert } from 'assert';
import { createHash, randomBytes } from 'crypto';
import { promises as fsp, constants as C } from 'fs';
import { constants as osConstants } from 'os';
import * as path from 'path';
import { PACKAGE_ROOT } from '../server/common/package-root';
import { runCli } from './helpers/server-process';
import { kill, TestCluster } from './helpers/test-cluster';
import { sh, TestMount } from './helpers/test-mount';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const osErrno = osConstants.errno;

/** Two mounts of one cluster, and a chunkserver dying under a mount. */
describe('mount: two mounts and failures', function () {
  this.timeout(240_000);
  let cluster: TestCluster;
  let a: TestMount;
  let b: TestMount;

  before(async () => {
    cluster = await TestCluster.start('mount-cluster', 4, ['--chunk-size', String(1 << 20), '--dead-timeout', '2']);
    a = await TestMount.start(cluster, 'a');
    // b reads through the chunkservers, a their files (short-circuit reads): each path sees what
    // the other mount wrote.
    b = await TestMount.start(cluster, 'b', ['--no-local-reads']);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await cluster?.stop();
  });

  it('close-to-open: what one mount closed, the other opens and reads', async () => {
    const data = randomBytes(3 * (1 << 20) + 777);
    await fsp.writeFile(a.at('shared.bin'), data);
    assert.equal(sha256(await fsp.readFile(b.at('shared.bin'))), sha256(data));
    const more = randomBytes(5000);
    const h = await fsp.open(b.at('shared.bin'), 'a');
    await h.write(more);
    await h.close();
    assert.equal(sha256(await fsp.readFile(a.at('shared.bin'))), sha256(Buffer.concat([data, more])));
    // A stat cached in b (kernel and mount caches) must not hide a's next change from b's next open.
    assert.equal((await fsp.stat(b.at('shared.bin'))).size, data.length + more.length);
    await fsp.writeFile(a.at('shared.bin'), 'rewritten by a');
    assert.equal(await fsp.readFile(b.at('shared.bin'), 'utf8'), 'rewritten by a');
    await fsp.appendFile(a.at('shared.bin'), ', then appended');
    assert.equal(await fsp.readFile(b.at('shared.bin'), 'utf8'), 'rewritten by a, then appended');
    await fsp.mkdir(b.at('made-in-b'));
    assert.ok((await fsp.readdir(a.at('.'))).includes('made-in-b'));
  });

  it('small files read whole from the open on: exact bytes at every size around the read-ahead piece, as of the open', async () => {
    // The read-ahead piece is 64 KiB..8 MiB (a quarter of the window): files up to it are
    // fetched whole at open, larger ones on the first read.
    const sizes = [1, 4095, 4096, 65_535, 65_536, 65_537, 262_144, 262_145, 1_000_000];
    const files = sizes.map((size) => ({ name: `small-${size}`, data: randomBytes(size) }));
    for (const f of files) await fsp.writeFile(a.at(f.name), f.data);
    for (const f of files) assert.ok((await fsp.readFile(b.at(f.name))).equals(f.data), `${f.name} read through the other mount`);
    // Rewritten and read again and again: each open sees the last close.
    for (let round = 0; round < 5; round++) {
      const next = randomBytes(3000 + round);
      await fsp.writeFile(a.at('small-1'), next);
      assert.ok((await fsp.readFile(b.at('small-1'))).equals(next), `round ${round}`);
    }
    // What an open fetched ahead is the file as of that open: a rewrite after it shows at the next open.
    const h = await fsp.open(b.at('small-4096'), 'r');
    await fsp.writeFile(a.at('small-4096'), 'changed after the open');
    const seen = Buffer.alloc(4096);
    await h.read(seen, 0, 4096, 0);
    await h.close();
    assert.ok(seen.equals(files[2].data) || seen.subarray(0, 22).toString() === 'changed after the open');
    assert.equal(await fsp.readFile(b.at('small-4096'), 'utf8'), 'changed after the open');
  });

  it('a stat the kernel caches never hides another mount\'s change from the next open, and expires', async () => {
    await fsp.writeFile(a.at('cached.txt'), 'short');
    assert.equal((await fsp.stat(b.at('cached.txt'))).size, 5); // now in b's kernel cache
    await fsp.writeFile(a.at('cached.txt'), 'a good deal longer than before');
    assert.equal(await fsp.readFile(b.at('cached.txt'), 'utf8'), 'a good deal longer than before');
    // An append through b lands after a's, though b's kernel last saw the file shorter.
    assert.equal((await fsp.stat(b.at('cached.txt'))).size, 30);
    await fsp.appendFile(a.at('cached.txt'), ', appended by a');
    await fsp.appendFile(b.at('cached.txt'), ', then by b');
    assert.equal(await fsp.readFile(a.at('cached.txt'), 'utf8'), 'a good deal longer than before, appended by a, then by b');
    await fsp.chmod(a.at('cached.txt'), 0o600);
    const deadline = Date.now() + 5000; // the attribute timeout is 1 s
    while (((await fsp.stat(b.at('cached.txt'))).mode & 0o777) !== 0o600) {
      assert.ok(Date.now() < deadline, 'b never saw a\'s chmod');
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  it('`chunkfs umount` detaches a mount, and its process flushes and exits', async () => {
    const c = await TestMount.start(cluster, 'umounted');
    try {
      const h = await fsp.open(c.at('left-open.txt'), 'w');
      await h.write('written, never closed');
      const done = await runCli(['umount', c.dir]);
      assert.equal(done.code, 0, done.stderr);
      assert.ok(!(await fsp.readdir(c.dir)).includes('left-open.txt'), 'detached from the directory tree');
      await h.close(); // a lazy unmount: the open file is still served, and its close flushes
      assert.equal(await c.exited, 0);
      assert.equal((await cluster.readAll('/left-open.txt')).toString(), 'written, never closed');
    } finally {
      await c.stop();
    }
  });

  it('streams a write through several flushes at once; rewrites of ranges in flight land in order', async () => {
    // 1 MiB write buffers over 1 MiB chunks: every buffer is a flush, two in flight at a time,
    // each allocating chunks past the size the other records.
    const c = await TestMount.start(cluster, 'c', ['--write-buffer', '1']);
    try {
      const MiB = 1 << 20;
      const model = randomBytes(12 * MiB + 4321);
      const h = await fsp.open(c.at('flights.bin'), 'w');
      await h.write(model, 0, model.length, 0);
      for (let i = 0; i < 20; i++) {
        const at = (i * 777_777) % (model.length - 300_000);
        const patch = randomBytes(300_000);
        await h.write(patch, 0, patch.length, at);
        patch.copy(model, at);
      }
      await h.sync();
      await h.close();
      assert.equal(sha256(await fsp.readFile(b.at('flights.bin'))), sha256(model), 'through another mount');
      assert.equal(sha256(await cluster.readAll('/flights.bin')), sha256(model), 'through the client library');
    } finally {
      await c.stop();
    }
  });

  it('stats answered from directory listings stay true: this mount\'s changes at once, another\'s within the cache time', async () => {
    await fsp.mkdir(a.at('many'));
    for (let i = 0; i < 60; i++) await fsp.writeFile(a.at(`many/f${i}`), 'x'.repeat(i));
    // b's stats miss in a row in one directory: its listing answers most of them.
    for (let i = 0; i < 60; i++) assert.equal((await fsp.stat(b.at(`many/f${i}`))).size, i, `f${i}`);
    await fsp.chmod(b.at('many/f7'), 0o600);
    assert.equal((await fsp.stat(b.at('many/f7'))).mode & 0o777, 0o600);
    await fsp.unlink(b.at('many/f8'));
    await assert.rejects(fsp.stat(b.at('many/f8')), { code: 'ENOENT' });
    await fsp.writeFile(b.at('many/f9'), 'rewritten');
    assert.equal((await fsp.stat(b.at('many/f9'))).size, 9);
    // Through the other mount: seen once the attribute cache's second has passed.
    await fsp.truncate(a.at('many/f10'), 1000);
    await fsp.rename(a.at('many/f11'), a.at('many/g11'));
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal((await fsp.stat(b.at('many/f10'))).size, 1000);
    await assert.rejects(fsp.stat(b.at('many/f11')), { code: 'ENOENT' });
    const listed = (await sh('ls -ln many | tail -n +2 | sort', b.dir)).stdout;
    assert.equal(listed, (await sh('ls -ln many | tail -n +2 | sort', a.dir)).stdout, 'ls -l agrees across mounts');
    assert.equal(listed.trim().split('\n').length, 59);
  });

  it('a listing fetched amid a stream of removals stays true to each of them, and to creates after', async () => {
    await fsp.mkdir(a.at('stream'));
    for (let i = 0; i < 40; i++) await fsp.mkdir(a.at(`stream/d${i}`));
    await new Promise((r) => setTimeout(r, 1200)); // the cached names expire: lookups miss, and a listing is fetched
    for (let i = 0; i < 20; i++) await fsp.rmdir(a.at(`stream/d${i}`)); // the listing is asked for amid these
    for (let i = 0; i < 40; i++) {
      if (i < 20) await assert.rejects(fsp.stat(a.at(`stream/d${i}`)), { code: 'ENOENT' }, `d${i} is gone`);
      else assert.ok((await fsp.stat(a.at(`stream/d${i}`))).isDirectory(), `d${i} is still there`);
    }
    for (let i = 20; i < 40; i++) {
      await fsp.rmdir(a.at(`stream/d${i}`));
      await fsp.writeFile(a.at(`stream/d${i}`), String(i)); // the same name, now a file
      assert.ok((await fsp.stat(a.at(`stream/d${i}`))).isFile(), `d${i} is a file now`);
    }
    assert.deepEqual((await fsp.readdir(a.at('stream'))).sort(), Array.from({ length: 20 }, (_, i) => `d${i + 20}`).sort());
  });

  it('O_EXCL creates race between two mounts: exactly one wins each name', async () => {
    const names = Array.from({ length: 30 }, (_, i) => `excl-${i}`);
    const attempt = async (m: TestMount, name: string): Promise<boolean> => {
      try {
        const h = await fsp.open(m.at(name), C.O_CREAT | C.O_EXCL | C.O_WRONLY);
        await h.write(m === a ? 'a' : 'b');
        await h.close();
        return true;
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, 'EEXIST');
        return false;
      }
    };
    for (const name of names) {
      const [wa, wb] = await Promise.all([attempt(a, name), attempt(b, name)]);
      assert.equal(Number(wa) + Number(wb), 1, `${name}: one winner`);
      assert.equal(await fsp.readFile(b.at(name), 'utf8'), wa ? 'a' : 'b');
    }
  });

  it("a directory one mount made answers its lookups of absent names itself: the other mount's changes there show at once", async () => {
    // a makes each directory and keeps changing it, so it holds the directory's lease; b changes
    // it right after, and a looks the new name up as soon as b's change returns.
    const changes: Record<string, (dir: string) => Promise<unknown>> = {
      create: (dir) => fsp.writeFile(b.at(`${dir}/new`), 'b'),
      mkdir: (dir) => fsp.mkdir(b.at(`${dir}/new`)),
      symlink: (dir) => fsp.symlink('own', b.at(`${dir}/new`)),
      link: (dir) => fsp.link(b.at('shared.bin'), b.at(`${dir}/new`)),
      'rename in': (dir) => fsp.writeFile(b.at(`${dir}.tmp`), 'b').then(() => fsp.rename(b.at(`${dir}.tmp`), b.at(`${dir}/new`))),
    };
    for (const [op, change] of Object.entries(changes)) {
      const dir = `leased-${op.replace(' ', '-')}`;
      await fsp.mkdir(a.at(dir));
      await fsp.writeFile(a.at(`${dir}/own`), 'a');
      await assert.rejects(fsp.lstat(a.at(`${dir}/new`)), { code: 'ENOENT' });
      await change(dir);
      assert.ok(await fsp.lstat(a.at(`${dir}/new`)), `${op}: a sees b's new name`);
      // a's own changes there go on, and b sees them.
      await fsp.writeFile(a.at(`${dir}/after`), 'a');
      assert.equal(await fsp.readFile(b.at(`${dir}/after`), 'utf8'), 'a');
    }
  });

  it('renameat2 RENAME_NOREPLACE races between two mounts: exactly one rename to each new name wins, the other fails with EEXIST', async () => {
    const count = 20;
    await fsp.mkdir(a.at('noreplace'));
    for (let i = 0; i < count; i++) {
      await fsp.writeFile(a.at(`noreplace/a${i}`), 'a');
      await fsp.writeFile(a.at(`noreplace/b${i}`), 'b');
    }
    // Both processes rename on one schedule, a name every 25 ms: each pair races.
    const script = path.join(cluster.root, 'noreplace.py');
    await fsp.writeFile(script, [
      'import ctypes, errno, sys, time',
      'libc = ctypes.CDLL(None, use_errno=True)',
      'side, count, start = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])',
      'for i in range(count):',
      '    time.sleep(max(0, start + i * 0.025 - time.time()))',
      "    r = libc.renameat2(-100, f'{side}{i}'.encode(), -100, f't{i}'.encode(), 1)",
      "    print('ok' if r == 0 else errno.errorcode[ctypes.get_errno()])",
    ].join('\n'));
    const start = Date.now() / 1000 + 1;
    const [outA, outB] = await Promise.all([
      a.ok(`python3 ${script} a ${count} ${start}`, a.at('noreplace')),
      b.ok(`python3 ${script} b ${count} ${start}`, b.at('noreplace')),
    ]);
    const [resA, resB] = [outA.trim().split('\n'), outB.trim().split('\n')];
    for (let i = 0; i < count; i++) {
      assert.deepEqual([resA[i], resB[i]].sort(), ['EEXIST', 'ok'], `t${i}: one rename wins`);
      assert.equal(await fsp.readFile(a.at(`noreplace/t${i}`), 'utf8'), resA[i] === 'ok' ? 'a' : 'b', `t${i} holds the winner's file`);
    }
    // Of the other flags, RENAME_EXCHANGE is served (mount-posix) and RENAME_WHITEOUT refused.
    const other = await a.ok(`python3 -c "import ctypes, errno; l = ctypes.CDLL(None, use_errno=True); print(l.renameat2(-100, b't0', -100, b't1', 4), errno.errorcode[ctypes.get_errno()])"`, a.at('noreplace'));
    assert.equal(other.trim(), '-1 EINVAL', 'RENAME_WHITEOUT is not supported');
  });

  it('a new file truncated by the other mount before its first bytes are flushed keeps them (its first chunk placed again)', async () => {
    // The create brought chunk 0; the other mount's O_TRUNC of the still-empty file drops it
    // from the file before this mount's close writes it.
    const go = path.join(cluster.root, 'trunc.go');
    const writer = a.sh(`python3 -c 'import os, time
f = open("raced", "w"); f.write("from a"); f.flush()
print("written", flush=True)
while not os.path.exists("${go}"): time.sleep(0.02)
f.close()'`);
    for (let i = 0; i < 200; i++) {
      if (await fsp.stat(b.at('raced')).then(() => true, () => false)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 200)); // its write reached a's buffer
    await (await fsp.open(b.at('raced'), C.O_WRONLY | C.O_TRUNC)).close();
    await fsp.writeFile(go, '');
    const r = await writer;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await fsp.readFile(b.at('raced'), 'utf8'), 'from a');
    assert.equal((await cluster.client.fsck('/raced')).healthy, true);
  });

  it('calls wait out a master restart: a listing is sent again, a mkdir made during the outage is made once it is back', async () => {
    await fsp.mkdir(a.at('survivor'));
    await fsp.writeFile(a.at('survivor/f'), 'kept');
    let listing: Promise<string[]> | null = null;
    let mkdirDuringOutage: Promise<unknown> | null = null;
    await cluster.restartMaster(async () => {
      listing = fsp.readdir(a.at('survivor'));
      mkdirDuringOutage = fsp.mkdir(a.at('made-during-outage')).then(() => 'made', (err: NodeJS.ErrnoException) => err.code);
      await new Promise((r) => setTimeout(r, 1500));
    });
    // At once, before the chunkservers have reported their replicas to the new master process.
    assert.equal(await fsp.readFile(b.at('survivor/f'), 'utf8'), 'kept', 'a read waits for replica locations');
    assert.deepEqual(await listing, ['f'], 'the listing was sent again once the master was back');
    // Its lookup (a read) waits for the master like the listing, and the mkdir is sent again
    // (with its retry key) until the master is back.
    assert.equal(await mkdirDuringOutage, 'made');
    assert.ok((await cluster.client.getattr('/made-during-outage')).ino > 0);
    await fsp.mkdir(a.at('survivor/after'));
  });

  it('namespace changes in a loop while the master is killed twice: none fails, each is made once', async () => {
    // A Python loop of mkdir, exclusive create + write + close, rename, symlink, link and unlink,
    // each checked; the master dies under it (changes in flight: made or not, they are sent again).
    await fsp.mkdir(a.at('churn'));
    const stopFile = path.join(cluster.root, 'churn.stop');
    const loop = a.sh(`python3 ${path.join(PACKAGE_ROOT, 'test/fixtures/namespace-churn.py')} churn ${stopFile}`);
    // Each kill lands while the loop is making progress (more rounds done than before).
    const rounds = async () => (await fsp.readdir(b.at('churn'))).filter((n) => n.startsWith('g')).length;
    const progressed = async () => {
      const from = await rounds();
      for (let i = 0; i < 300 && (await rounds()) <= from + 2; i++) await new Promise((r) => setTimeout(r, 50));
    };
    const settle = () => new Promise<void>((r) => setTimeout(r, 700));
    await progressed();
    await cluster.restartMaster(settle);
    await progressed();
    await cluster.restartMaster(settle);
    await progressed();
    await fsp.writeFile(stopFile, '');
    const r = await loop;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const made = Number(/^rounds (\d+)$/m.exec(r.stdout)?.[1]);
    assert.ok(made > 6, r.stdout);
    // What the loop left, as the master has it: every round's survivors, nothing twice or lost.
    const names = (await cluster.client.readdirAll('/churn')).map((e) => e.name).sort();
    const want = Array.from({ length: made }, (_, i) => [`d${i}`, `g${i}`, `s${i}`]).flat().sort();
    assert.deepEqual(names, want);
    assert.equal(await fsp.readFile(b.at(`churn/g${made - 1}`), 'utf8'), `file ${made - 1}`);
  });

  it('a file closed while the master restarts is written whole once it is back (its confirmation and size are sent again)', async () => {
    const data = randomBytes(200_000);
    // O_EXCL: the create brings the first chunk and its lease, so the close needs the master only
    // to confirm the chunk and record the size, both safe to send twice.
    const h = await fsp.open(a.at('closed-during-outage'), C.O_CREAT | C.O_EXCL | C.O_WRONLY);
    await h.write(data); // buffered in the mount
    let closing: Promise<string> | null = null;
    await cluster.restartMaster(async () => {
      closing = h.close().then(() => 'closed', (err: NodeJS.ErrnoException) => err.code ?? String(err));
      await new Promise((r) => setTimeout(r, 1500));
    });
    // BUG: the confirmation and the size record failed with EIO when their connection broke.
    assert.equal(await closing, 'closed');
    assert.equal(sha256(await fsp.readFile(b.at('closed-during-outage'))), sha256(data), 'through the other mount');
  });

  it('a file renamed, and a new one made under its name, while its writes are being flushed: each keeps its own bytes', async () => {
    await fsp.mkdir(a.at('rotate'));
    const r = await a.ok(`python3 ${path.join(PACKAGE_ROOT, 'test/fixtures/rename-while-flushing.py')} rotate 3 12`);
    // BUG: chunk calls went by name: a confirmation or allocation sent before the rename and
    // answered after it met the new file (ESTALE, then placed the renamed file's chunk in the
    // new file), and the rotated file read zeros where those bytes belonged.
    assert.deepEqual(r.trim().split('\n'), ['round 0 ok', 'round 1 ok', 'round 2 ok'], r);
    // The directory renamed instead: a call by the old name meets no directory there (ENOENT
    // from the path walk, which failed the fsync before it was taken for ESTALE).
    await fsp.mkdir(a.at('rotate-dir'));
    const d = await a.ok(`python3 ${path.join(PACKAGE_ROOT, 'test/fixtures/rename-while-flushing.py')} rotate-dir 4 12 dir`);
    assert.deepEqual(d.trim().split('\n'), ['round 0 ok', 'round 1 ok', 'round 2 ok', 'round 3 ok'], d);
  });

  it('a name open here that the other mount replaces opens as the new file: renamed over, or removed and made again', async () => {
    await fsp.writeFile(a.at('cfg'), 'old');
    const held = await fsp.open(a.at('cfg'), 'r');
    await fsp.writeFile(b.at('cfg.tmp'), 'new content');
    await fsp.rename(b.at('cfg.tmp'), b.at('cfg'));
    // BUG (44e43af): a new open here was given the open old file, whose calls the master then
    // refused (ESTALE), since the name is another file's.
    assert.equal(await fsp.readFile(a.at('cfg'), 'utf8'), 'new content');
    await a.ok('echo hello > cfg');
    assert.equal(await fsp.readFile(b.at('cfg'), 'utf8'), 'hello\n');
    const old = Buffer.alloc(3);
    await held.read(old, 0, 3, 0);
    assert.equal(old.toString(), 'old', 'the handle open before reads the file it opened');
    await held.close();

    await fsp.writeFile(a.at('made-again'), 'first');
    const kept = await fsp.open(a.at('made-again'), 'r+');
    await fsp.unlink(b.at('made-again'));
    await new Promise((r) => setTimeout(r, 1200)); // past a's entry timeout: its kernel looks the name up again
    const again = await fsp.open(a.at('made-again'), C.O_CREAT | C.O_TRUNC | C.O_WRONLY);
    await again.write('second file');
    await again.sync();
    await again.close();
    await kept.close().catch(() => undefined);
    assert.equal(await fsp.readFile(b.at('made-again'), 'utf8'), 'second file');
  });

  it("a file open here that the other mount renames, replaces, or moves with its directory: writes, fstat and ftruncate follow it, never the file that took its name", async () => {
    await fsp.writeFile(a.at('kept-open'), 'first');
    const h = await fsp.open(a.at('kept-open'), 'r+');
    await fsp.rename(b.at('kept-open'), b.at('kept-open.1'));
    await fsp.writeFile(b.at('kept-open'), 'the new file');
    const data = randomBytes(3 << 20);
    await h.write(data, 0);
    await h.sync(); // BUG: EIO, and before that the new file grew to 3 MiB (the calls went by name)
    assert.equal((await h.stat()).size, 3 << 20);
    // Its directory renamed too: found again by its inode.
    await fsp.mkdir(b.at('moving'));
    await fsp.rename(b.at('kept-open.1'), b.at('moving/kept'));
    await fsp.rename(b.at('moving'), b.at('moved'));
    await h.write(Buffer.from('tail!'), 0, 5, 3 << 20);
    await h.truncate((3 << 20) + 4);
    const st = await h.stat();
    await h.close();
    assert.equal(st.size, (3 << 20) + 4);
    assert.equal(await fsp.readFile(b.at('kept-open'), 'utf8'), 'the new file');
    assert.ok((await fsp.readFile(b.at('moved/kept'))).equals(Buffer.concat([data, Buffer.from('tail')])), 'the renamed file holds what was written');
    assert.equal((await fsp.stat(b.at('moved/kept'))).size, (3 << 20) + 4);

    // Removed by the other mount (and the name made again): writes fail, fstat shows no link
    // left, and the new file is untouched.
    const doomed = await fsp.open(a.at('doomed'), 'w');
    await doomed.write('x');
    await doomed.sync();
    const before = await doomed.stat();
    await fsp.unlink(b.at('doomed'));
    await fsp.writeFile(b.at('doomed'), 'other');
    await doomed.write(randomBytes(1 << 20), 0);
    // libuv has no name for ESTALE: errno numbers, negated.
    const outcome = await doomed.sync().then(() => 0, (err: NodeJS.ErrnoException) => -(err.errno ?? 0));
    const after = await doomed.stat();
    await doomed.close().catch(() => undefined);
    assert.ok(outcome === osErrno.EIO || outcome === osErrno.ESTALE, `fsync: errno ${outcome}`);
    assert.deepEqual([after.ino, after.nlink, after.size], [before.ino, 0, 1 + (1 << 20)]); // the write came after the "x"
    assert.equal(await fsp.readFile(b.at('doomed'), 'utf8'), 'other');
  });

  it("a read that waits for a flush while another thread writes keeps no data fetched without that write", async () => {
    const r = await a.ok(`python3 ${path.join(PACKAGE_ROOT, 'test/fixtures/read-beside-write.py')} beside-write.bin 10`);
    // BUG: 9 of 10 rounds read stale bytes: the read fetched (and kept, read ahead) the file
    // after the flush it waited for, while the tag's write was still buffered, and that write's
    // flush left the kept bytes in place.
    assert.equal(r.trim().split('\n').filter((l) => l.endsWith(' ok')).length, 10, r);
  });

  it('fsyncs that fail on a master stalled past the call deadline: after it is back, rewrites and fsyncs land whole (chunk confirmed and size recorded again)', async () => {
    await fsp.mkdir(a.at('stall'));
    const stalled = path.join(cluster.root, 'stall.stopped');
    const back = path.join(cluster.root, 'stall.back');
    const script = path.join(PACKAGE_ROOT, 'test/fixtures/fsync-after-stall.py');
    const run = a.sh(`python3 ${script} stall ${stalled} ${back}`);
    const until = async (file: string) => {
      while (!(await fsp.stat(file).then(() => true, () => false))) await new Promise((r) => setTimeout(r, 50));
    };
    // The writes are buffered; the master stops before the fsyncs send them.
    while (!(await fsp.readdir(a.at('stall'))).includes('longer')) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    process.kill(cluster.master.pid, 'SIGSTOP');
    await fsp.writeFile(stalled, '');
    await until(`${stalled}.done`); // both fsyncs failed at the mount's 30 s call deadline
    await cluster.restartMaster();
    await fsp.writeFile(back, '');
    const r = await run;
    assert.equal(r.code, 0, r.stderr);
    const steps = r.stdout.trim().split('\n');
    assert.ok(steps.includes('stalled-fsync-same ETIMEDOUT') || steps.includes('stalled-fsync-same EIO'), r.stdout);
    for (const s of ['fsync-same ok', 'close-same ok', 'fsync-longer ok', 'close-longer ok']) assert.ok(steps.includes(s), `${s}: ${r.stdout}`);
    const data = Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 7 + 3) % 251));
    // BUG: `same` read back 0 bytes (the size record was skipped: the mount took the failed one
    // for made) and `longer` read back as zeros (its first chunk never confirmed: the failed
    // confirmation's lease was kept with its create flag spent).
    assert.equal(sha256(await fsp.readFile(b.at('stall/same'))), sha256(data), 'same, through the other mount');
    assert.equal(sha256(await fsp.readFile(b.at('stall/longer'))), sha256(Buffer.concat([data, Buffer.from('x')])), 'longer');
  });

  it('a chunkserver killed during a cp of a large file: the copy completes and reads back intact', async () => {
    const local = path.join(cluster.root, 'large.local');
    await fsp.writeFile(local, randomBytes(24 * (1 << 20)));
    const want = sha256(await fsp.readFile(local));
    const copy = sh(`cp ${local} large.bin`, a.dir);
    await new Promise((r) => setTimeout(r, 300));
    await kill(cluster.chunkservers[1]);
    const r = await copy;
    if (r.code === 0) {
      assert.equal(sha256(await fsp.readFile(b.at('large.bin'))), want, 'through the other mount');
      assert.equal(sha256(await cluster.readAll('/large.bin')), want, 'through the client library');
    } else {
      assert.match(r.stderr, /Input\/output error/, 'a failed copy says EIO, never silently corrupts');
    }
    // Either way, the cluster heals: every chunk back at full replication on the live servers.
    await cluster.until((rep) => rep.chunks?.underReplicated === 0 && rep.chunks.missing === 0, 'full replication', 60_000);
    if (r.code === 0) assert.equal(sha256(await fsp.readFile(a.at('large.bin'))), want);
  });

  it('random calls agree with a local directory while the master is killed again and again: each change made once, nothing acknowledged lost', async () => {
    // The differential script of mount-posix (renames with every flag, links, truncates, writes
    // through four descriptors, xattrs...) on this mount and a local directory; the master is
    // killed under it and started again while it runs.
    const script = path.join(PACKAGE_ROOT, 'test', 'fixtures', 'posix-diff.py');
    const local = path.join(cluster.root, 'diff-local');
    await fsp.mkdir(local);
    await fsp.mkdir(a.at('diff'));
    let finished = false;
    const run = a.sh(`umask 022 && python3 ${script} ${local} ${a.at('diff')} 3 3000`).finally(() => { finished = true; });
    let restarts = 0;
    for (; !finished && restarts < 6; restarts++) {
      await new Promise((r) => setTimeout(r, 300));
      await cluster.restartMaster(() => new Promise((r) => setTimeout(r, 200)));
    }
    const r = await run;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout.trim(), 'same after 3000 calls');
    assert.ok(restarts >= 2, `the calls ended after ${restarts} restarts`);
  });
});
