import { strict as assert } from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MasterClient } from '../client/master-client';
import { MasterProcess, startMaster } from './helpers/server-process';

/**
 * A metadata directory on a real, tiny tmpfs that fills up (ENOSPC) while the master runs: the
 * master drops it with an alarm visible in status and keeps acknowledging from the other one;
 * after a restart the directory is repaired and alone holds every acknowledged change.
 * Needs root to mount tmpfs (CI runs as root); without it this fails loudly rather than skip.
 */
describe('a metadata directory that runs out of space', function () {
  this.timeout(60_000);
  let root: string;
  let small: string;
  let master: MasterProcess | null = null;

  before(() => {
    assert.equal(process.getuid?.(), 0, 'this test mounts a tmpfs and must run as root');
  });
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'chunkfs-enospc-'));
    small = path.join(root, 'small');
    fs.mkdirSync(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', small]);
  });
  afterEach(async () => {
    if (master) {
      master.kill('SIGKILL');
      await master.stopped;
    }
    master = null;
    try {
      execFileSync('umount', ['-l', small], { stdio: 'ignore' });
    } catch {
      // already unmounted by the test
    }
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('is dropped with an alarm; nothing acknowledged is lost; it is repaired on restart', async () => {
    const disk = path.join(root, 'disk');
    master = await startMaster([disk, small]);
    let client = new MasterClient(master.address);
    // Leave ~24 KiB: a few hundred records fit, the rest hit ENOSPC.
    const free = fs.statfsSync(small).bavail * fs.statfsSync(small).bsize;
    fs.writeFileSync(path.join(small, 'filler'), Buffer.alloc(Math.max(0, free - 24 * 1024)));
    const N = 1500;
    for (let i = 0; i < N; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, k) => client.mkdir(`/d${i + k}`, 0o755)));
    }
    const status = await client.status();
    assert.equal(status.metaDirs.find((d) => d.path === small)?.healthy, false);
    assert.ok(status.alarms.some((a) => a.includes(small) && /ENOSPC|no space/i.test(a)), status.alarms.join('\n'));
    assert.equal(status.metaDirs.find((d) => d.path === disk)?.healthy, true);
    client.close();

    master.kill('SIGKILL');
    await master.stopped;
    execFileSync('umount', ['-l', small]); // the directory comes back empty, on the big disk
    master = await startMaster([disk, small]);
    client = new MasterClient(master.address);
    assert.equal((await client.readdirAll('/')).length, N);
    assert.deepEqual((await client.status()).alarms, []);
    client.close();

    master.kill('SIGKILL');
    await master.stopped;
    master = await startMaster([small]); // the repaired directory alone is enough
    client = new MasterClient(master.address);
    assert.equal((await client.readdirAll('/')).length, N);
    client.close();
  });
});
