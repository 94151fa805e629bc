import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CliResult, MasterProcess, runCli, startMaster } from './helpers/server-process';

/** The `chunkfs` executable against a real master process on loopback. */
describe('chunkfs CLI', function () {
  let metaDir: string;
  let master: MasterProcess;
  const cli = (...args: string[]): Promise<CliResult> => runCli([...args, '--master', master.address]);

  /** Runs a command that must succeed and returns its stdout. */
  async function ok(...args: string[]): Promise<string> {
    const r = await cli(...args);
    assert.strictEqual(r.code, 0, `chunkfs ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  }

  /** Runs a command that must fail with exit 1 and an errno name on stderr. */
  async function failsWith(errno: string, ...args: string[]): Promise<void> {
    const r = await cli(...args);
    assert.strictEqual(r.code, 1, `chunkfs ${args.join(' ')}: exit ${r.code}, stderr ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^chunkfs: ${errno}: `));
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace for an FsError');
  }

  before(async function () {
    metaDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chunkfs-cli-'));
    master = await startMaster([metaDir]);
  });

  after(async function () {
    if (master) await master.stop();
    fs.rmSync(metaDir, { recursive: true, force: true });
  });

  it('mkdir, touch, ls and ls -l', async function () {
    await ok('mkdir', '/ls');
    await ok('touch', '/ls/b', '/ls/a');
    await ok('mkdir', '/ls/dir');
    assert.strictEqual(await ok('ls', '/ls'), 'a\nb\ndir\n');
    const long = (await ok('ls', '-l', '/ls')).trimEnd().split('\n');
    assert.strictEqual(long.length, 3);
    assert.match(long[0], /^-rw-r--r-- 1 0 0\s+0 \w{3} [ \d]\d \d\d:\d\d a$/);
    assert.match(long[2], /^drwxr-xr-x 2 0 0 4096 .* dir$/);
    assert.match(await ok('ls', '-l', '/ls/a'), /^-rw-r--r-- 1 0 0 0 .* \/ls\/a\n$/);
  });

  it('takes relative paths against / and ignores trailing slashes', async function () {
    await ok('mkdir', 'rel/');
    assert.strictEqual(await ok('ls', '/rel//'), '');
    assert.match(await ok('ls', '/'), /^rel$/m);
  });

  it('stat, human and --json', async function () {
    await ok('touch', '/st');
    const human = await ok('stat', '/st');
    assert.match(human, /File: \/st\n/);
    assert.match(human, /regular file/);
    assert.match(human, /Access: \(0644\/-rw-r--r--\)/);
    const json = JSON.parse(await ok('stat', '--json', '/'));
    assert.strictEqual(json.type, 'directory');
    assert.strictEqual(json.ino, 1);
    for (const key of ['mode', 'uid', 'gid', 'nlink', 'size', 'atimeMs', 'mtimeMs', 'ctimeMs']) {
      assert.strictEqual(typeof json[key], 'number', key);
    }
  });

  it('mkdir -p makes parents and accepts existing directories', async function () {
    await ok('mkdir', '-p', '/p/q/r');
    await ok('mkdir', '-p', '/p/q/r');
    assert.strictEqual(await ok('ls', '/p/q'), 'r\n');
    await ok('touch', '/p/file');
    await failsWith('ENOTDIR', 'mkdir', '-p', '/p/file/sub');
  });

  it('touch creates, then sets times; -d sets a given date', async function () {
    await ok('touch', '-d', '2020-01-02T03:04:05Z', '/t');
    let attr = JSON.parse(await ok('stat', '--json', '/t'));
    assert.strictEqual(attr.mtimeMs, Date.parse('2020-01-02T03:04:05Z'));
    assert.strictEqual(attr.atimeMs, attr.mtimeMs);
    const before = Date.now();
    await ok('touch', '/t');
    attr = JSON.parse(await ok('stat', '--json', '/t'));
    assert.ok(attr.mtimeMs >= before - 1000, `mtime ${attr.mtimeMs} not refreshed`);
    await failsWith('EINVAL', 'touch', '-d', 'not a date', '/t');
  });

  it('mv renames, and moves into an existing directory', async function () {
    await ok('mkdir', '/mv', '/mv/into');
    await ok('touch', '/mv/a');
    await ok('mv', '/mv/a', '/mv/b');
    await ok('mv', '/mv/b', '/mv/into');
    assert.strictEqual(await ok('ls', '/mv'), 'into\n');
    assert.strictEqual(await ok('ls', '/mv/into'), 'b\n');
    await failsWith('ENOENT', 'mv', '/mv/missing', '/mv/x');
  });

  it('ln and ln -s', async function () {
    await ok('mkdir', '/ln');
    await ok('touch', '/ln/f');
    await ok('ln', '/ln/f', '/ln/hard');
    await ok('ln', '-s', '../elsewhere', '/ln/soft');
    assert.strictEqual(JSON.parse(await ok('stat', '--json', '/ln/f')).nlink, 2);
    assert.match(await ok('ls', '-l', '/ln'), /^l.* soft -> \.\.\/elsewhere$/m);
    const soft = JSON.parse(await ok('stat', '--json', '/ln/soft'));
    assert.strictEqual(soft.type, 'symlink');
    assert.strictEqual(soft.target, '../elsewhere');
    await failsWith('EEXIST', 'ln', '-s', 'x', '/ln/f');
  });

  it('chmod sets octal modes and refuses anything else', async function () {
    await ok('touch', '/ch');
    await ok('chmod', '4750', '/ch');
    assert.match(await ok('ls', '-l', '/ch'), /^-rwsr-x--- /);
    await failsWith('EINVAL', 'chmod', 'u+x', '/ch');
    await failsWith('EINVAL', 'chmod', '17777', '/ch');
  });

  it('rm, rm -r, and their errors', async function () {
    await ok('mkdir', '-p', '/rm/d/e');
    await ok('touch', '/rm/d/e/f', '/rm/g');
    await ok('rm', '/rm/g');
    await failsWith('EISDIR', 'rm', '/rm/d');
    await ok('rm', '-r', '/rm/d');
    assert.strictEqual(await ok('ls', '/rm'), '');
    await failsWith('ENOENT', 'rm', '/rm/g');
    await failsWith('EBUSY', 'rm', '-r', '/');
  });

  it('reports errnos with exit status 1', async function () {
    await ok('mkdir', '/err');
    await failsWith('EEXIST', 'mkdir', '/err');
    await failsWith('ENOENT', 'ls', '/no/such/dir');
    await failsWith('ENOENT', 'stat', '/nothing');
    await ok('touch', '/err/file');
    await failsWith('ENOTDIR', 'ls', '/err/file/y');
  });

  it('exits 2 on usage errors', async function () {
    for (const args of [
      ['frobnicate'], ['mkdir'], ['ls', '--bogus'], ['bench', 'meta', '--clients', '0'],
      // The mount refuses bad tuning before touching the mount point.
      ['mount', '/nonexistent-mountpoint', '--read-ahead', '65'], ['mount', '/nonexistent-mountpoint', '--write-buffer', '0'],
      // A master refuses bad tuning before it opens its metadata.
      ['master', '--meta-dir', '/nonexistent-meta', '--listen', '127.0.0.1:0', '--gc-delay', '-1'],
      ['master', '--meta-dir', '/nonexistent-meta', '--listen', '127.0.0.1:0', '--replication-interval', '0'],
    ]) {
      const r = await cli(...args);
      assert.strictEqual(r.code, 2, `chunkfs ${args.join(' ')}: exit ${r.code}`);
      assert.match(r.stderr, /chunkfs: /);
    }
    const help = await runCli(['ls', '--help']);
    assert.strictEqual(help.code, 0);
    assert.match(help.stdout, /--master/);
  });

  it('says which master is unreachable', async function () {
    const r = await runCli(['ls', '/', '--master', '127.0.0.1:1']);
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /^chunkfs: EIO: master 127\.0\.0\.1:1 unreachable/);
  });

  it('admin status and checkpoint', async function () {
    const status = JSON.parse(await ok('admin', 'status', '--json'));
    assert.ok(status.txid > 0);
    assert.deepStrictEqual(status.metaDirs.map((d: { path: string }) => d.path), [metaDir]);
    assert.ok(status.metaDirs[0].healthy);
    const checkpoint = await ok('admin', 'checkpoint');
    assert.match(checkpoint, new RegExp(`^txid ${status.txid}\nbytes \\d+\nduration [\\d.]+ ms\n$`));
    assert.match(await ok('admin', 'status'), new RegExp(`checkpoint txid ${status.txid}\n`));
  });

  it('admin log prints the records from a txid on, straight from the files', async function () {
    await ok('mkdir', '/logged');
    await ok('mv', '/logged', '/logged2');
    const txid = JSON.parse(await ok('admin', 'status', '--json')).txid;
    const r = await runCli(['admin', 'log', '--meta-dir', metaDir, '--from', String(txid - 1)]);
    assert.strictEqual(r.code, 0, r.stderr);
    const records = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.deepStrictEqual(records.map((x) => [x.txid, x.mutation.op]), [[txid - 1, 'mkdir'], [txid, 'rename']]);
    assert.deepStrictEqual(records[1].mutation, { op: 'rename', from: '/logged', to: '/logged2', time: records[1].mutation.time });
    const missing = await runCli(['admin', 'log', '--meta-dir', path.join(metaDir, 'nope')]);
    assert.strictEqual(missing.code, 1);
    assert.match(missing.stderr, /^chunkfs: ENOENT: /);
  });

  it('bench meta --json prints one line per operation and cleans up', async function () {
    const out = await ok('bench', 'meta', '--json', '--files', '200', '--clients', '4', '--files-per-dir', '64',
      '--dir', '/bench/nested');
    const lines = out.trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.deepStrictEqual(lines.map((l) => l.op), ['create', 'stat', 'rename', 'delete']);
    for (const l of lines) {
      assert.deepStrictEqual(Object.keys(l), ['op', 'ops', 'seconds', 'opsPerSec', 'p50Ms', 'p99Ms']);
      assert.strictEqual(l.ops, 200);
      assert.ok(l.opsPerSec > 0 && l.p99Ms >= l.p50Ms);
    }
    await failsWith('ENOENT', 'ls', '/bench');
  });

  it('bench meta refuses an existing directory and leaves it alone', async function () {
    await ok('mkdir', '-p', '/mine/d0');
    await ok('touch', '/mine/d0/f0');
    await failsWith('EEXIST', 'bench', 'meta', '--files', '10', '--dir', '/mine');
    assert.strictEqual(await ok('ls', '/mine/d0'), 'f0\n');
  });

  it('bench meta --keep leaves the files, and ls follows readdir cookies', async function () {
    const out = await ok('bench', 'meta', '--json', '--ops', 'stat', '--files', '2500', '--files-per-dir', '2500',
      '--clients', '8', '--dir', '/kept', '--keep');
    assert.strictEqual(JSON.parse(out).op, 'stat');
    const names = (await ok('ls', '/kept/d0')).trimEnd().split('\n');
    assert.strictEqual(names.length, 2500);
    assert.strictEqual(new Set(names).size, 2500);
    await ok('rm', '-r', '/kept');
  });
});
