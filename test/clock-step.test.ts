import { strict as assert } from 'assert';
import { existsSync, promises as fsp, writeFileSync } from 'fs';
import * as path from 'path';
import { TestCluster } from './helpers/test-cluster';
import { TestMount } from './helpers/test-mount';

/** libfaketime (Debian's package): moves a process's wall clock, leaving its monotonic clock alone. */
const FAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const HOUR_SEC = 3600;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The wall clock of a mount's machine can step (NTP correcting it, an operator, a VM resumed):
 * its caches and the deadlines of its calls run on the monotonic clock, so a step neither keeps
 * stale attributes nor fails, or keeps waiting on, calls out at that moment. The mount here
 * runs under libfaketime, whose offset the test moves while it runs.
 */
describe('a mount whose wall clock steps', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let stepped: TestMount;
  let other: TestMount;
  let offsetFile: string;
  /** Moves the stepped mount's wall clock to `seconds` from the real one. */
  const stepTo = (seconds: number) => writeFileSync(offsetFile, `${seconds >= 0 ? '+' : ''}${seconds}\n`);
  /** `stat -c %s` of `rel` in `mount`, by a child process working outside it (the mount may hang). */
  const statSize = (mount: TestMount, rel: string) => mount.sh(`stat -c %s ${mount.at(rel)}`, '/');
  const sizeIn = async (mount: TestMount, rel: string) => Number((await mount.ok(`stat -c %s ${mount.at(rel)}`, '/')).trim());

  before(async function () {
    if (!existsSync(FAKETIME)) throw new Error(`${FAKETIME} missing: apt-get install libfaketime (.ci/run does)`);
    cluster = await TestCluster.start('clock-step', 3);
    offsetFile = path.join(cluster.root, 'clock-offset');
    stepTo(0);
    // An operation's own time limit far off, so that only a master call's deadline ends a wait.
    stepped = await TestMount.start(cluster, 'stepped', ['--op-timeout', '600'], {
      LD_PRELOAD: FAKETIME,
      FAKETIME_TIMESTAMP_FILE: offsetFile,
      FAKETIME_NO_CACHE: '1', // the file is read again at every call: the offset moves at once
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    });
    other = await TestMount.start(cluster, 'other');
  });
  afterEach(() => {
    cluster?.master.kill('SIGCONT');
    if (offsetFile) stepTo(0);
  });
  after(async () => {
    await stepped?.stop();
    await other?.stop();
    await cluster?.stop();
  });

  it('sees another mount\'s change within the cache times after its clock stepped back an hour', async () => {
    await fsp.writeFile(other.at('seen'), 'v1');
    assert.equal(await sizeIn(stepped, 'seen'), 2); // cached in the stepped mount now
    stepTo(-HOUR_SEC);
    await fsp.writeFile(other.at('seen'), 'version 2');
    // The kernel's and the mount's caches hold attributes for a second each (the defaults).
    const deadline = Date.now() + 15_000;
    while ((await sizeIn(stepped, 'seen')) !== 9) {
      assert.ok(Date.now() < deadline, 'the stepped mount still shows the old size 15 s after the change');
      await sleep(200);
    }
  });

  it('a call out while the clock steps an hour ahead waits for its answer', async () => {
    await fsp.writeFile(other.at('ahead'), 'made elsewhere'); // not cached in the stepped mount
    cluster.master.kill('SIGSTOP');
    const stat = statSize(stepped, 'ahead');
    await sleep(500); // the lookup is out, waiting on the stopped master
    stepTo(HOUR_SEC);
    await sleep(1_500);
    cluster.master.kill('SIGCONT');
    const r = await stat;
    assert.equal(r.code, 0, `stat failed: ${r.stderr}`);
    assert.equal(r.stdout.trim(), '14');
  });

  it('a call out while the clock steps an hour back still ends at its deadline', async () => {
    await fsp.writeFile(other.at('back'), 'made elsewhere too');
    const logged = stepped.log().length;
    cluster.master.kill('SIGSTOP');
    const stat = statSize(stepped, 'back');
    await sleep(500);
    stepTo(-HOUR_SEC);
    const r = await stat; // at the master call's deadline (30 s), not an hour later
    cluster.master.kill('SIGCONT');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /timed out/);
    assert.match(stepped.log().slice(logged), /did not answer getAttr within/);
  });
});
