import { strict as assert } from 'assert';
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PACKAGE_ROOT } from '../server/common/package-root';
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
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function startUp(): Promise<{ address: string; exited: Promise<number | null> }> {
    const child = spawn(process.execPath, [path.join(PACKAGE_ROOT, 'dist/bin/chunkfs.js'), 'up', '--dir', dir, '--listen', '127.0.0.1:0',
      '--mount', path.join(dir, 'mnt')],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    up = child;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    return new Promise((resolve, reject) => {
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (s: string) => {
        out += s;
        const m = /master listening (\S+)/.exec(out);
        if (m && out.includes('cluster up')) resolve({ address: m[1], exited });
      });
      void exited.then((code) => reject(new Error(`up exited with ${code} before the master listened: ${out}`)));
    });
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
    assert.throws(() => execFileSync('pgrep', ['-f', dir]), 'no process of this cluster is left');
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
});
