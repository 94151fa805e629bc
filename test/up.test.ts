import { strict as assert } from 'assert';
import { ChildProcess, execFileSync, spawn } from 'child_process';
import { createHash, randomBytes } from 'crypto';
import * as fs from 'fs';
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PACKAGE_ROOT } from '../server/common/package-root';
import { serverEnv } from '../server/common/server-runtime';
import { runCli } from './helpers/server-process';

/** `chunkfs up` (what `npm start` runs): starts the cluster, stops it all on Ctrl-C, reuses data. */
describe('chunkfs up', function () {
  this.timeout(60_000);
  let dir: string;
  let up: ChildProcess | null = null;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chunkfs-up-'));
  });
  afterEach(() => {
    up?.kill('SIGKILL');
    execFileSync('sh', ['-c', `fusermount -uz ${path.join(dir, 'mnt')} 2>/dev/null || true`]);
    // The master is up's child: end it by the data directory it was given, if up left it.
    try {
      execFileSync('pkill', ['-KILL', '-f', dir]);
    } catch {
      // nothing left: the normal case
    }
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10 }); // a server may still be ending
  });

  interface Up {
    address: string;
    exited: Promise<number | null>;
    /** What up and its servers have written to stderr so far. */
    stderr(): string;
  }

  function startUp(mount = path.join(dir, 'mnt')): Promise<Up> {
    const child = spawn(process.execPath, [path.join(PACKAGE_ROOT, 'dist/bin/chunkfs.js'), 'up', '--dir', dir, '--listen', '127.0.0.1:0',
      '--mount', mount],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    up = child;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s)); // read, or a full pipe stalls the servers
    return new Promise((resolve, reject) => {
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (s: string) => {
        out += s;
        const m = /master listening (\S+)/.exec(out);
        if (m && out.includes('cluster up')) resolve({ address: m[1], exited, stderr: () => err });
      });
      void exited.then((code) => reject(new Error(`up exited with ${code} before the master listened: ${out}`)));
    });
  }

  /** The pid of the one process whose command line has `what` (a pattern with this test's directory). */
  const pidOf = (what: string): number => {
    const pids = execFileSync('pgrep', ['-f', what], { encoding: 'utf8' }).trim().split('\n');
    assert.equal(pids.length, 1, `one ${what}: ${pids.join(' ')}`);
    return Number(pids[0]);
  };

  /** No process has this test's directory on its command line (pgrep finds none: status 1). */
  const nothingLeft = (): boolean => {
    try {
      execFileSync('pgrep', ['-f', dir]);
      return false;
    } catch (err) {
      assert.equal((err as { status?: number }).status, 1, `pgrep failed: ${String(err)}`);
      return true;
    }
  };

  async function waitFor(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
    const until = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const mounted = () => {
    try {
      execFileSync('mountpoint', ['-q', path.join(dir, 'mnt')]);
      return true;
    } catch {
      return false;
    }
  };

  it('serves a master, chunkservers and a mount, stops everything on SIGINT, and keeps the data for the next run', async () => {
    const first = await startUp();
    assert.equal((await runCli(['mkdir', '/hello', '--master', first.address])).code, 0);
    const local = path.join(dir, 'local.txt');
    fs.writeFileSync(local, 'data through the local cluster\n');
    let put = await runCli(['put', local, '/hello/file', '--master', first.address]);
    for (let i = 0; put.code !== 0 && i < 50; i++) { // chunkservers register within a heartbeat or two
      await new Promise((r) => setTimeout(r, 200));
      put = await runCli(['put', local, '/hello/file', '--master', first.address]);
    }
    assert.equal(put.code, 0, put.stderr);
    assert.ok(mounted());
    fs.writeFileSync(path.join(dir, 'mnt/hello/through-mount'), 'written through the mount\n');
    up!.kill('SIGINT');
    assert.equal(await first.exited, 0);
    assert.ok(nothingLeft(), 'no process of this cluster is left');
    assert.ok(!mounted(), 'Ctrl-C unmounts');

    const second = await startUp();
    const ls = await runCli(['ls', '/', '--master', second.address]);
    assert.equal(ls.stdout.trim(), 'hello');
    assert.equal(fs.readFileSync(path.join(dir, 'mnt/hello/through-mount'), 'utf8'), 'written through the mount\n');
    let cat = await runCli(['cat', '/hello/file', '--master', second.address]);
    for (let i = 0; cat.code !== 0 && i < 50; i++) { // replica locations come with the chunkservers' reports
      await new Promise((r) => setTimeout(r, 200));
      cat = await runCli(['cat', '/hello/file', '--master', second.address]);
    }
    assert.equal(cat.stdout, 'data through the local cluster\n');
    up!.kill('SIGTERM');
    assert.equal(await second.exited, 0);
  });

  it('starts its servers with the memory they touched kept for use again: a warm mount faults in few fresh pages per small file written', async () => {
    const first = await startUp();
    const mount = pidOf(`chunkfs.js mount ${dir}`);
    // Minor faults (field 10 of /proc/PID/stat, after the parenthesised name) per 4 KiB file
    // created and written through the mount, once warm: 17-21 with glibc's defaults, 5-6 with
    // the tunables.
    const minflt = () => Number(fs.readFileSync(`/proc/${mount}/stat`, 'utf8').split(') ')[1].split(' ')[7]);
    const base = path.join(dir, 'mnt', 'many');
    fs.mkdirSync(base);
    const data = randomBytes(4096);
    for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(base, `warm${i}`), data);
    const before = minflt();
    const n = 300;
    for (let i = 0; i < n; i++) fs.writeFileSync(path.join(base, `f${i}`), data);
    const perFile = (minflt() - before) / n;
    assert.ok(perFile < 10, `the mount faulted in ${perFile} fresh pages per file`);
    up!.kill('SIGINT');
    assert.equal(await first.exited, 0);
  });

  it('adds its malloc tunables to an operator\'s own, which come last and so win (as glibc\'s loader reads them)', () => {
    const tunables = (env: NodeJS.ProcessEnv): string[] => execFileSync('/lib64/ld-linux-x86-64.so.2', ['--list-tunables'], { env: serverEnv(env), encoding: 'utf8' })
      .split('\n').filter((l) => /^glibc\.malloc\.(mmap|trim)_threshold:/.test(l)).map((l) => l.split(' (')[0]).sort();
    assert.deepEqual(tunables({}), ['glibc.malloc.mmap_threshold: 0x400000', 'glibc.malloc.trim_threshold: 0x4000000']);
    assert.deepEqual(tunables({ GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=0' }), ['glibc.malloc.mmap_threshold: 0x400000', 'glibc.malloc.trim_threshold: 0x0']);
  });

  it('starts a server that dies again: the master on its address (the mount rides out its restart), a chunkserver, the mount', async function () {
    this.timeout(120_000);
    const cluster = await startUp();
    const mnt = path.join(dir, 'mnt');
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    fs.writeFileSync(path.join(mnt, 'before'), data);

    const master = pidOf(`chunkfs.js master --meta-dir ${dir}`);
    process.kill(master, 'SIGKILL');
    // Changes made while no master runs wait for the new one (the mount's calls ride it out).
    // (Not sync calls: this process must go on reading the servers' logs from the pipe meanwhile.)
    await fsp.mkdir(path.join(mnt, 'during'));
    await fsp.writeFile(path.join(mnt, 'during/file'), 'written while the master restarted\n');
    await waitFor('up to say the master died', () => /master \(pid \d+\) ended with SIGKILL; starting it again/.test(cluster.stderr()));
    await waitFor('the master running again', () => cluster.stderr().includes('master running again'));
    assert.notEqual(pidOf(`chunkfs.js master --meta-dir ${dir}`), master);
    const ls = await runCli(['ls', '/', '--master', cluster.address]);
    assert.equal(ls.code, 0, `the new master answers on the first one's address: ${ls.stderr}`);
    assert.deepEqual(ls.stdout.trim().split('\n').sort(), ['before', 'during']);

    const cs = pidOf(`chunkfs.js chunkserver --data-dir ${dir}/cs1`);
    process.kill(cs, 'SIGKILL');
    await waitFor('chunkserver 1 running again', () => /chunkserver 1 running again \(pid \d+\): \S+/.test(cluster.stderr()));
    const address = /chunkserver 1 running again \(pid \d+\): (\S+)/.exec(cluster.stderr())![1];
    await waitFor('the restarted chunkserver alive at the master', () =>
      new RegExp(`^alive \\S+ ${address} `, 'm').test(execFileSync(process.execPath, [path.join(PACKAGE_ROOT, 'dist/bin/chunkfs.js'), 'admin', 'report', '--master', cluster.address], { encoding: 'utf8' })));

    const mount = pidOf(`chunkfs.js mount ${dir}`);
    process.kill(mount, 'SIGKILL');
    await waitFor('the mount running again', () => cluster.stderr().includes('mount running again'));
    assert.ok(mounted());
    assert.equal(sha(fs.readFileSync(path.join(mnt, 'before'))), sha(data));
    assert.equal(fs.readFileSync(path.join(mnt, 'during/file'), 'utf8'), 'written while the master restarted\n');

    up!.kill('SIGINT');
    assert.equal(await cluster.exited, 0, cluster.stderr());
    assert.ok(nothingLeft(), 'no process of this cluster is left');
    assert.ok(!mounted());
  });

  it('keeps starting a master killed or stopped again and again soon after each start (that is no crash loop)', async function () {
    this.timeout(120_000);
    const cluster = await startUp();
    const mnt = path.join(dir, 'mnt');
    const mount = pidOf(`chunkfs.js mount ${dir}`);
    const restarts = () => cluster.stderr().match(/master running again/g)?.length ?? 0;
    // SIGTERM and SIGINT make it stop cleanly (status 0); SIGKILL kills it.
    const signals: NodeJS.Signals[] = ['SIGKILL', 'SIGTERM', 'SIGKILL', 'SIGINT'];
    for (const [i, signal] of signals.entries()) {
      await fsp.writeFile(path.join(mnt, `before-${i}`), `${signal}\n`);
      process.kill(pidOf(`chunkfs.js master --meta-dir ${dir}`), signal);
      await waitFor(`the master running again (${i + 1})`, () => restarts() > i || /gave up/.test(cluster.stderr()));
      assert.doesNotMatch(cluster.stderr(), /gave up/);
    }
    // The mount rode out every restart.
    assert.equal(pidOf(`chunkfs.js mount ${dir}`), mount);
    for (const [i, signal] of signals.entries()) assert.equal(await fsp.readFile(path.join(mnt, `before-${i}`), 'utf8'), `${signal}\n`);
    await fsp.writeFile(path.join(mnt, 'after-kills'), 'still here\n');
    assert.equal(await fsp.readFile(path.join(mnt, 'after-kills'), 'utf8'), 'still here\n');
    up!.kill('SIGINT');
    assert.equal(await cluster.exited, 0, cluster.stderr());
    assert.ok(nothingLeft());
  });

  it('cleans the mount point when its mount had to be killed on the way out (it did not stop in time)', async function () {
    this.timeout(90_000); // the mount gets 15 s to stop
    const cluster = await startUp();
    const mnt = path.join(dir, 'mnt');
    const inMountTable = () => fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === mnt);
    assert.ok(inMountTable());
    const mount = pidOf(`chunkfs.js mount ${dir}`);
    process.kill(mount, 'SIGSTOP'); // deaf to the SIGTERM: killed after the grace time
    up!.kill('SIGINT');
    assert.equal(await cluster.exited, 1, 'a server that had to be killed is reported');
    assert.match(cluster.stderr(), /mount \(pid \d+\) ended with SIGKILL/);
    assert.match(cluster.stderr(), /unmounted .* left by the mount's end/);
    assert.ok(!inMountTable(), 'no dead mount is left behind');
    await fsp.stat(mnt); // not "Transport endpoint is not connected"
    assert.ok(nothingLeft());
  });

  it('gives up a server that fails to start again three times and stops the cluster with status 1', async () => {
    const cluster = await startUp('');
    process.kill(pidOf(`chunkfs.js master --meta-dir ${dir}`), 'SIGKILL');
    // Its metadata directory replaced by a file: each start fails until up gives up.
    fs.renameSync(path.join(dir, 'master'), path.join(dir, 'master.away'));
    fs.writeFileSync(path.join(dir, 'master'), 'not a directory\n');
    assert.equal(await cluster.exited, 1);
    const err = cluster.stderr();
    // Its death soon after its start counts as a failed start too (a crash loop is no cluster).
    const failed = err.match(/chunkfs master exited with status \d+ before it was ready/g)?.length ?? 0;
    assert.ok(failed === 2 || failed === 3, err);
    assert.match(err, /gave up after 3 failed starts in a row; stopping the cluster/);
    assert.ok(nothingLeft(), 'the chunkservers were stopped too');
  });

  it('its servers stop when up itself is killed: the mount flushes an open file first, unmounts, and nothing is left running', async () => {
    const cluster = await startUp();
    fs.writeFileSync(path.join(dir, 'mnt/kept'), 'kept\n');
    // A file still open, its bytes in the mount's write buffer: the mount flushes them while it
    // stops, before the master and chunkservers (which wait AFTER_PARENT_MS) go.
    // (The path in its environment: on its command line, pgrep would count it as the cluster's.)
    const holder = spawn('python3', ['-c', 'import os, time; f = open(os.environ["OPEN"], "w"); f.write("buffered\\n"); f.flush(); print("written", flush=True); time.sleep(120)'],
      { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, OPEN: path.join(dir, 'mnt/open') } });
    try {
      await new Promise((resolve) => holder.stdout!.once('data', resolve));
      up!.kill('SIGKILL');
      await cluster.exited;
      await waitFor('every server of the cluster to end', nothingLeft);
    } finally {
      holder.kill('SIGKILL');
    }
    assert.ok(!mounted(), 'the mount unmounted itself');
    await startUp();
    assert.equal(fs.readFileSync(path.join(dir, 'mnt/kept'), 'utf8'), 'kept\n', 'the next up starts (no lock or port left held)');
    assert.equal(fs.readFileSync(path.join(dir, 'mnt/open'), 'utf8'), 'buffered\n', 'the open file was flushed');
  });

  it('starts on a mount point left stale by a mount killed with the rest of the cluster', async () => {
    await startUp();
    fs.writeFileSync(path.join(dir, 'mnt/kept'), 'kept\n');
    // As in an OOM kill or `pkill -9 node`, but in an order that leaves the mount point stale
    // every time: up stopped (it would restart the mount), the mount killed, then the rest.
    up!.kill('SIGSTOP');
    const mount = pidOf(`chunkfs.js mount ${dir}`);
    process.kill(mount, 'SIGKILL');
    await waitFor('the mount to end (a zombie: up, stopped, does not reap it)', () => / Z /.test(fs.readFileSync(`/proc/${mount}/stat`, 'utf8')));
    execFileSync('pkill', ['-KILL', '-f', dir]);
    await waitFor('every process of the cluster to end', nothingLeft);
    // (a stat might be answered from the kernel's cache; a request caught by the connection's
    // abort fails with ECONNABORTED, later ones with ENOTCONN)
    assert.throws(() => fs.readdirSync(path.join(dir, 'mnt')), (err: NodeJS.ErrnoException) => {
      assert.match(String(err.code), /ENOTCONN|ECONNABORTED/, `the mount point is stale: ${err.message}`);
      return true;
    });
    await startUp();
    assert.equal(fs.readFileSync(path.join(dir, 'mnt/kept'), 'utf8'), 'kept\n');
  });

  it('stops in order on SIGHUP (its terminal closed), as on Ctrl-C', async () => {
    const cluster = await startUp();
    fs.writeFileSync(path.join(dir, 'mnt/kept'), 'kept\n');
    up!.kill('SIGHUP');
    assert.equal(await cluster.exited, 0, cluster.stderr());
    assert.ok(nothingLeft(), 'no process of this cluster is left');
    assert.ok(!mounted(), 'unmounted');
  });
});
