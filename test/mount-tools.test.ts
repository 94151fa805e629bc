import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TestCluster } from './helpers/test-cluster';
import { sh, TestMount } from './helpers/test-mount';

/**
 * Standard tools on the mount, compared with the same tools on a local directory: what users
 * actually run. Everything goes through a real `chunkfs mount` process.
 */
describe('mount: shell tools', function () {
  this.timeout(300_000);
  let cluster: TestCluster;
  let mnt: TestMount;
  let local: string;
  const run = (cmd: string) => mnt.ok(cmd);

  before(async () => {
    cluster = await TestCluster.start('mount-tools', 3, ['--chunk-size', String(1 << 20)]);
    mnt = await TestMount.start(cluster);
    local = fs.mkdtempSync(path.join(os.tmpdir(), 'chunkfs-local-'));
    // A tree with what archives must keep: nested dirs, modes, symlinks, hard links, old mtimes.
    await sh(`set -e
      mkdir -p src/a/b/c src/empty src/x
      for i in $(seq 1 300); do echo "file $i" > src/a/f$i; done
      for d in $(seq 1 17); do mkdir -p bulk/d$d; for i in $(seq 1 100); do echo "$d/$i" > bulk/d$d/f$i; done; done
      for i in $(seq 1 40); do head -c $((i * 3001)) /dev/urandom > src/a/b/r$i; done
      head -c 2500000 /dev/urandom > src/a/b/c/big
      chmod 750 src/a/b; chmod 604 src/a/f1; chmod 4755 src/a/f2
      ln -s a/f3 src/link; ln -s /nowhere src/dangling; ln src/a/f4 src/x/hard
      touch -h -d '2011-11-11 11:11:11' src/link
      touch -d '2001-01-01 01:01:01.5' src/a/f5 src/a/b`, local);
  });
  after(async () => {
    await mnt?.stop();
    await cluster?.stop();
    if (local) fs.rmSync(local, { recursive: true, force: true });
  });

  it('sets exactly the times touch -d/-a/-m, cp -p and rsync -t ask for', async () => {
    await run(`echo t > t1 && touch -d '2020-02-29 12:34:56.123456' t1`);
    assert.equal((await run('stat -c "%x|%y" t1')).trim(), '2020-02-29 12:34:56.123456000 +0000|2020-02-29 12:34:56.123456000 +0000');
    await run(`touch -a -d '2019-01-01 00:00:01' t1`);
    assert.equal((await run('stat -c "%X %Y" t1')).trim(), `${Date.UTC(2019, 0, 1, 0, 0, 1) / 1000} ${Date.UTC(2020, 1, 29, 12, 34, 56) / 1000}`);
    await run(`touch -m -d '2018-06-15 10:00:00' t1`);
    assert.equal((await run('stat -c "%X %Y" t1')).trim(), `${Date.UTC(2019, 0, 1, 0, 0, 1) / 1000} ${Date.UTC(2018, 5, 15, 10) / 1000}`);
    await sh(`echo cp > ${local}/p && touch -d '2015-05-05 05:05:05' ${local}/p`, '/');
    await run(`cp -p ${local}/p cp-p && rsync -t ${local}/p rsync-t`);
    for (const name of ['cp-p', 'rsync-t']) {
      assert.equal((await run(`stat -c %Y ${name}`)).trim(), String(Date.UTC(2015, 4, 5, 5, 5, 5) / 1000), name);
    }
  });

  it('cp -a of a real tree, then diff -r finds nothing', async () => {
    await run(`cp -a ${local}/src cpa`);
    await run(`diff -r --no-dereference ${local}/src cpa`);
    const want = await sh('find . -printf "%p %m %l %n\\n" | sort', path.join(local, 'src'));
    assert.equal(await run('cd cpa && find . -printf "%p %m %l %n\\n" | sort'), want.stdout, 'modes, link targets, link counts');
  });

  it('tar create and extract keep contents, modes, symlinks, hard links and mtimes', async () => {
    // Thousands of files: the small tree plus 1,700 more.
    await run(`tar -C ${local} -cf tree.tar src bulk && mkdir untar && tar -C untar -xpf tree.tar`);
    // tar archives keep whole seconds of mtime
    const listing = 'find . -printf "%p %M %l %n %Ts\\n" | sort';
    const want = await sh(listing, path.join(local, 'src'));
    assert.equal(await run(`cd untar/src && ${listing}`), want.stdout);
    await run(`diff -r --no-dereference ${local}/src untar/src`);
    await run(`diff -r ${local}/bulk untar/bulk`);
    const files = (await run('find untar -type f | wc -l')).trim();
    assert.equal(files, (await sh('find src bulk -type f | wc -l', local)).stdout.trim());
    assert.ok(Number(files) > 2000, `${files} files`);
    // And a tarball made on the mount extracts identically elsewhere.
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'chunkfs-untar-'));
    try {
      await run(`tar -C untar -cf - src | tar -C ${out} -xpf -`);
      assert.equal((await sh(listing, path.join(out, 'src'))).stdout, want.stdout);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  it('rsync -a copies a tree that rsync --checksum then finds identical', async () => {
    await run(`rsync -a ${local}/src/ rs/`);
    const again = await run(`rsync -a --checksum --dry-run --itemize-changes ${local}/src/ rs/`);
    assert.equal(again.trim(), '', `rsync still sees differences:\n${again}`);
    await run(`rsync -a rs/ ${local}/back/`);
    await run(`diff -r --no-dereference ${local}/src ${local}/back`);
  });

  it('git init, add, commit, log, status and gc inside the mount', async () => {
    const git = 'git -c user.name=t -c user.email=t@example.com -c init.defaultBranch=main';
    await run(`mkdir repo && cd repo && ${git} init -q && cp -r ${local}/src/a/b . && ${git} add . && ${git} commit -qm first`);
    await run(`cd repo && echo change >> b/r1 && ${git} commit -qam second && ${git} gc -q`);
    const log = await run(`cd repo && ${git} log --format=%s`);
    assert.deepEqual(log.trim().split('\n'), ['second', 'first']);
    assert.equal((await run(`cd repo && ${git} status --porcelain`)).trim(), '');
    await run(`cd repo && ${git} fsck --strict`);
  });

  it('dd of several chunks, sparse files, mv, ln, chmod, df and find', async () => {
    await sh(`head -c 5500000 /dev/urandom > ${local}/rand`, '/');
    await run(`dd if=${local}/rand of=dd.bin bs=64k status=none`);
    assert.equal((await run('sha256sum < dd.bin')).split(' ')[0], (await sh(`sha256sum < ${local}/rand`, '/')).stdout.split(' ')[0]);
    // O_DIRECT reads reach the mount at dd's own sizes, straddling its read-ahead pieces.
    const digest = async (cmd: string, cwd?: string): Promise<string> =>
      (cwd ? (await sh(`${cmd} | sha256sum`, cwd)).stdout : await run(`${cmd} | sha256sum`)).split(' ')[0];
    for (const args of ['bs=100000', 'bs=77777 skip=9 count=30', 'bs=1000000 skip=2 count=2']) {
      assert.equal(await digest(`dd if=dd.bin iflag=direct ${args} status=none`), await digest(`dd if=rand ${args} status=none`, local), args);
    }
    await run('dd if=/dev/zero of=dd.bin bs=4096 count=1 seek=300 conv=notrunc status=none');
    await sh(`dd if=/dev/zero of=${local}/rand bs=4096 count=1 seek=300 conv=notrunc status=none`, '/');
    assert.equal((await run('sha256sum < dd.bin')).split(' ')[0], (await sh(`sha256sum < ${local}/rand`, '/')).stdout.split(' ')[0]);

    await run('dd if=/dev/urandom of=sparse bs=1k count=3 seek=3000 status=none && truncate -s 9M sparse2');
    assert.equal((await run('stat -c %s sparse sparse2')).trim().split('\n').join(' '), `${3003 * 1024} ${9 << 20}`);
    assert.equal((await run('head -c 3072000 sparse | tr -d "\\0" | wc -c')).trim(), '0', 'the hole reads as zeros');
    assert.equal((await run('tr -d "\\0" < sparse2 | wc -c')).trim(), '0', 'a file grown by truncate reads as zeros');

    await run('mkdir -p m1 m2 && echo moved > m1/f && mv m1/f m2/g && ln -s g m2/sym && ln m2/g m2/hard && chmod 751 m2/g');
    assert.equal(await run('cat m2/sym'), 'moved\n');
    assert.equal((await run('stat -c "%a %h" m2/g')).trim(), '751 2');
    assert.equal((await run('ls m1 | wc -l')).trim(), '0');

    const df = (await run('df -B1 --output=size,avail .')).trim().split('\n')[1].trim().split(/\s+/).map(Number);
    assert.ok(df[0] > 0 && df[1] > 0 && df[1] <= df[0], `df: ${df}`);
    assert.equal((await run('find cpa -type f | wc -l')).trim(), (await sh('find src -type f | wc -l', local)).stdout.trim());
  });
});
