import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { TestCluster } from './helpers/test-cluster';
import { TestMount } from './helpers/test-mount';

/**
 * Extended attributes through real mounts, driven by setfattr/getfattr, Python's os.*xattr
 * and libc through ctypes (for the size probes), cp, rsync and tar.
 */
describe('mount: extended attributes', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let a: TestMount;
  let b: TestMount;

  before(async () => {
    cluster = await TestCluster.start('mount-xattrs', 3);
    a = await TestMount.start(cluster, 'a');
    b = await TestMount.start(cluster, 'b');
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await cluster?.stop();
  });

  /** Runs a Python script with the mount `m` as working directory; its output. */
  const python = (m: TestMount, script: string) => {
    const file = path.join(cluster.root, `script-${Date.now()}.py`);
    fs.writeFileSync(file, script);
    return m.ok(`python3 ${file}`);
  };

  /** Every attribute of every file below `dir` (relative names), as getfattr dumps them. */
  const dump = (m: TestMount, dir: string) => m.ok(`cd ${dir} && getfattr -R -d -m - -e hex . | grep -v '^$' | sort`);

  it('sets, gets, lists and removes them on files, directories and binary values, with setfattr and getfattr', async () => {
    await a.ok('mkdir t1 && echo data > t1/f');
    await a.ok('setfattr -n user.color -v blue t1/f && setfattr -n user.bin -v 0x00ff0a00 t1/f && setfattr -n trusted.t -v tv t1/f');
    await a.ok('setfattr -n user.onDir -v yes t1 && setfattr -n user.empty t1/f');
    assert.equal(await a.ok('getfattr --only-values -n user.color t1/f'), 'blue');
    assert.equal(await a.ok('getfattr --only-values -n user.bin -e hex t1/f | od -An -tx1 | tr -d " \\n"'), '00ff0a00');
    assert.equal(await a.ok('getfattr --only-values -n user.onDir t1'), 'yes');
    assert.equal(await a.ok('getfattr --absolute-names -d -m - t1/f | grep -v "^#" | grep -v "^$"'), 'trusted.t="tv"\nuser.bin=0sAP8KAA==\nuser.color="blue"\nuser.empty=""\n');
    await a.ok('setfattr -x user.color t1/f');
    const gone = await a.sh('getfattr -n user.color t1/f');
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /No such attribute/);
    assert.equal(await a.ok('cat t1/f'), 'data\n', 'the data is untouched');
  });

  it('changes ctime and nothing else; hard links share them; rename keeps them', async () => {
    await a.ok('mkdir t2 && echo x > t2/f && ln t2/f t2/g');
    const before = (await a.ok('stat -c "%Y %X %z %s" t2/f')).split(' ');
    await new Promise((r) => setTimeout(r, 20));
    await a.ok('setfattr -n user.k -v v t2/g');
    const after = (await a.ok('stat -c "%Y %X %z %s" t2/f')).split(' ');
    assert.equal(after[0], before[0], 'mtime');
    assert.equal(after[1], before[1], 'atime');
    assert.notEqual(after.slice(2, 4).join(' '), before.slice(2, 4).join(' '), 'ctime');
    assert.equal(await a.ok('getfattr --only-values -n user.k t2/f'), 'v');
    await a.ok('mv t2/f t2/moved');
    assert.equal(await a.ok('getfattr --only-values -n user.k t2/moved'), 'v');
  });

  it('answers every edge with the errno of a local file system', async () => {
    await a.ok('mkdir t3 && echo x > t3/f && ln -s f t3/link');
    const script = `
import ctypes, errno, os
libc = ctypes.CDLL('libc.so.6', use_errno=True)
def code(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
        return 'ok'
    except OSError as e:
        return errno.errorcode[e.errno]
def c_code(r):
    return 'ok' if r >= 0 else errno.errorcode[ctypes.get_errno()]
f = b't3/f'
out = []
out.append(code(os.getxattr, f, 'user.none'))
os.setxattr(f, 'user.a', b'12345')
out.append(code(os.setxattr, f, 'user.a', b'x', os.XATTR_CREATE))
out.append(code(os.setxattr, f, 'user.b', b'x', os.XATTR_REPLACE))
out.append(code(os.removexattr, f, 'user.none'))
out.append(code(os.setxattr, f, 'user.' + 'n' * 251, b'x'))
out.append(code(os.setxattr, f, 'user.big', b'x' * 65537))
out.append(code(os.setxattr, f, 'nonsense.a', b'x'))
out.append(code(os.setxattr, f, 'user.', b'x'))
out.append(code(os.setxattr, 't3/link', 'user.a', b'x', follow_symlinks=False))
out.append(code(os.getxattr, 't3/missing', 'user.a'))
out.append(code(os.listxattr, 't3/missing'))
buf = ctypes.create_string_buffer(64)
out.append(str(libc.getxattr(f, b'user.a', None, 0)))
out.append(c_code(libc.getxattr(f, b'user.a', buf, 4)))
out.append(str(libc.getxattr(f, b'user.a', buf, 5)) + ':' + buf.raw[:5].decode())
out.append(str(libc.listxattr(f, None, 0)))
out.append(c_code(libc.listxattr(f, buf, 3)))
os.setxattr(f, 'user.max', b'm' * 65536)
out.append(str(len(os.getxattr(f, 'user.max'))))
out.append(','.join(sorted(os.listxattr(f))))
print(' '.join(out))
`;
    const got = (await python(a, script)).trim().split(' ');
    assert.deepStrictEqual(got, [
      'ENODATA', // a missing name
      'EEXIST', // XATTR_CREATE of an existing one
      'ENODATA', // XATTR_REPLACE of a missing one
      'ENODATA', // removing a missing one
      'ERANGE', // a 256-byte name
      'E2BIG', // a value over 64 KiB
      'ENOTSUP', // an unknown namespace (EOPNOTSUPP: the same number on Linux)
      'EINVAL', // nothing after the namespace
      'EPERM', // user.* on a symlink
      'ENOENT',
      'ENOENT',
      '5', // the size probe
      'ERANGE', // a buffer too small
      '5:12345',
      '7', // "user.a\0"
      'ERANGE',
      '65536',
      'user.a,user.max',
    ]);
  });

  it('a file unlinked while open keeps them through its handle', async () => {
    const script = `
import os
fd = os.open('t4', os.O_CREAT | os.O_RDWR, 0o644)
os.setxattr(fd, 'user.k', b'before')
os.unlink('t4')
os.setxattr(fd, 'user.k2', b'after')
print(os.getxattr(fd, 'user.k').decode(), os.getxattr(fd, 'user.k2').decode(), sorted(os.listxattr(fd)))
os.close(fd)
`;
    assert.equal((await python(a, script)).trim(), "before after ['user.k', 'user.k2']");
  });

  it('a write drops security.capability, as on a local file system', async () => {
    // A valid capability set (VFS_CAP_REVISION_2, effective, cap_net_raw permitted); the kernel
    // removes it on the next write to the file.
    const caps = '0x0100000200200000000000000000000000000000';
    await a.ok(`echo x > t5 && setfattr -n security.capability -v ${caps} t5 && setfattr -n user.keep -v 1 t5`);
    assert.equal(await a.ok('getfattr --only-values -n security.capability -e hex t5 | od -An -tx1 | tr -d " \\n"'), caps.slice(2));
    await a.ok('echo more >> t5');
    assert.equal((await a.sh('getfattr -n security.capability t5')).code, 1, 'dropped by the write');
    assert.equal(await a.ok('getfattr --only-values -n user.keep t5'), '1', 'other attributes stay');
    assert.equal(await a.ok('cat t5'), 'x\nmore\n');
  });

  it("a write drops another mount's security.capability within the attribute timeout, also through a hard link made there", async () => {
    const caps = '0x0100000200200000000000000000000000000000';
    await a.ok('mkdir -p t9/d t9/e && echo x > t9/d/f');
    const script = `
import os, subprocess, time
fd = os.open('t9/d/f', os.O_WRONLY | os.O_APPEND)
os.write(fd, b'1')
subprocess.run(['ln', '${b.at('t9/d/f')}', '${b.at('t9/e/g')}'], check=True)
os.listdir('t9/e')
subprocess.run(['setfattr', '-n', 'security.capability', '-v', '${caps}', '${b.at('t9/d/f')}'], check=True)
os.stat('t9/e/g')
time.sleep(2.5)
os.write(fd, b'2')
os.close(fd)
`;
    await python(a, script);
    assert.equal((await b.sh('cat t9/d/f > /dev/null; getfattr -n security.capability t9/e/g')).code, 1, 'dropped by the write through mount a');
    assert.equal(await b.ok('cat t9/e/g'), 'x\n12');
  });

  it('lists trusted.* names to privileged callers only', async () => {
    await a.ok('echo x > t10 && chmod 644 t10 && setfattr -n trusted.secret -v s t10 && setfattr -n user.open -v o t10');
    assert.equal(await a.ok('getfattr -d -m - t10 | grep -v "^#" | grep -v "^$"'), 'trusted.secret="s"\nuser.open="o"\n');
    assert.equal(await a.ok(`setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c "import os; print(os.listxattr('t10'))"`), "['user.open']\n");
  });

  it('another mount sees them once it opens the file (close-to-open, like the data)', async () => {
    await a.ok('echo x > t6');
    assert.equal((await b.sh('getfattr -n user.k t6')).code, 1);
    await a.ok('setfattr -n user.k -v from-a t6');
    await b.ok('cat t6 > /dev/null');
    assert.equal(await b.ok('getfattr --only-values -n user.k t6'), 'from-a');
    await b.ok('setfattr -x user.k t6 && setfattr -n user.j -v from-b t6');
    await a.ok('cat t6 > /dev/null');
    assert.equal(await a.ok('getfattr -d t6 | grep user'), 'user.j="from-b"\n');
  });

  it('cp -a, rsync -X and tar --xattrs copy them, and they match the source', async () => {
    await a.ok([
      'mkdir -p t7/src/sub && echo 1 > t7/src/one && echo 2 > t7/src/sub/two && ln -s one t7/src/link',
      'setfattr -n user.a -v 1 t7/src/one && setfattr -n user.b -v 0x0001ff t7/src/one',
      'setfattr -n user.d -v dir t7/src/sub && setfattr -n user.two -v "$(head -c 3000 /dev/zero | tr "\\0" z)" t7/src/sub/two',
    ].join(' && '));
    const source = await dump(a, 't7/src');
    assert.match(source, /user\.two=0x7a7a/);
    await a.ok('cp -a t7/src t7/cp && rsync -aX t7/src/ t7/rsync/ && tar --xattrs --xattrs-include="user.*" -C t7/src -cf /tmp/chunkfs-xattrs-$$.tar . && mkdir t7/tar && tar --xattrs --xattrs-include="user.*" -C t7/tar -xf /tmp/chunkfs-xattrs-$$.tar; rm -f /tmp/chunkfs-xattrs-$$.tar');
    for (const copy of ['cp', 'rsync', 'tar']) assert.equal(await dump(a, `t7/${copy}`), source, copy);
    assert.equal(await b.ok('cd t7 && cat rsync/sub/two tar/one'), '2\n1\n');
  });

  it('keep every acknowledged change across master restarts, from the log and from a checkpoint', async () => {
    await a.ok('mkdir t8 && echo x > t8/f && setfattr -n user.before -v checkpoint t8/f && setfattr -n user.gone -v x t8/f');
    await cluster.client.checkpoint();
    await a.ok('setfattr -n user.after -v logged t8/f && setfattr -x user.gone t8/f && setfattr -n user.before -v replaced t8/f');
    const before = await dump(a, 't8');
    await cluster.restartMaster();
    await b.ok('cat t8/f > /dev/null'); // the mounts reconnect
    assert.equal(await dump(b, 't8'), before);
    assert.match(before, /user\.after=0x6c6f67676564/);
    assert.doesNotMatch(before, /user\.gone/);
    await cluster.client.checkpoint(); // now all from the checkpoint
    await cluster.restartMaster();
    await a.ok('cat t8/f > /dev/null');
    assert.equal(await dump(a, 't8'), before);
  });
});
