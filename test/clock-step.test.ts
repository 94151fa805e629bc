import { strict as assert } from 'assert';
import { existsSync, mkdtempSync, promises as fsp, rmSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TestCluster } from './helpers/test-cluster';
import { TestMount } from './helpers/test-mount';

/** libfaketime (Debian's package): moves a process's wall clock, leaving its monotonic clock alone. */
const FAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const HOUR_SEC = 3600;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Environment that runs a process under libfaketime, its wall clock `offsetFile`'s seconds off. */
const fakeClock = (offsetFile: string): NodeJS.ProcessEnv => ({
  LD_PRELOAD: FAKETIME,
  FAKETIME_TIMESTAMP_FILE: offsetFile,
  FAKETIME_NO_CACHE: '1', // the file is read again at every call: the offset moves at once
  FAKETIME_DONT_FAKE_MONOTONIC: '1',
});

/**
 * The wall clock of a machine can step (NTP correcting it, an operator, a VM resumed): caches,
 * deadlines and liveness run on the monotonic clock, so a step neither keeps stale attributes
 * nor fails, or keeps waiting on, calls out at that moment, and a master's step kills no
 * chunkserver and hides no dead one. The master and one mount here run under libfaketime, each
 * with an offset the test moves while they run.
 */
describe('wall clock steps', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let stepped: TestMount;
  let other: TestMount;
  let offsetFile: string;
  let masterOffsetFile: string;
  let offsets: string;
  /** Moves the wall clock of the process reading `file` to `seconds` from the real one. */
  const stepFile = (file: string, seconds: number) => writeFileSync(file, `${seconds >= 0 ? '+' : ''}${seconds}\n`);
  const stepTo = (seconds: number) => stepFile(offsetFile, seconds);
  /** `stat -c %s` of `rel` in `mount`, by a child process working outside it (the mount may hang). */
  const statSize = (mount: TestMount, rel: string) => mount.sh(`stat -c %s ${mount.at(rel)}`, '/');
  const sizeIn = async (mount: TestMount, rel: string) => Number((await mount.ok(`stat -c %s ${mount.at(rel)}`, '/')).trim());

  before(async function () {
    if (!existsSync(FAKETIME)) throw new Error(`${FAKETIME} missing: apt-get install libfaketime (.ci/run does)`);
    offsets = mkdtempSync(path.join(os.tmpdir(), 'chunkfs-clock-offsets-'));
    offsetFile = path.join(offsets, 'mount');
    masterOffsetFile = path.join(offsets, 'master');
    stepTo(0);
    stepFile(masterOffsetFile, 0);
    cluster = await TestCluster.start('clock-step', 3, [], [], fakeClock(masterOffsetFile));
    // An operation's own time limit far off, so that only a master call's deadline ends a wait.
    stepped = await TestMount.start(cluster, 'stepped', ['--op-timeout', '600'], fakeClock(offsetFile));
    other = await TestMount.start(cluster, 'other');
  });
  afterEach(() => {
    cluster?.master.kill('SIGCONT');
    if (offsetFile) stepTo(0);
    if (masterOffsetFile) stepFile(masterOffsetFile, 0);
  });
  after(async () => {
    await stepped?.stop();
    await other?.stop();
    await cluster?.stop();
    if (offsets) rmSync(offsets, { recursive: true, force: true });
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

  it('a master whose clock steps an hour ahead kills no chunkserver; stepped back, it still finds a dead one', async () => {
    const alive = async () => (await cluster.client.report()).chunkservers.filter((cs) => cs.alive).length;
    const logged = cluster.master.stderr().length;
    stepFile(masterOffsetFile, HOUR_SEC);
    await sleep(3_000); // sweeps every second; the dead timeout is 5 s, heartbeats come every 0.2 s
    assert.equal(await alive(), 3);
    assert.doesNotMatch(cluster.master.stderr().slice(logged), /is dead/, 'chunkservers declared dead (for a moment) by the step');
    await fsp.writeFile(other.at('after-steps'), 'written with the master an hour ahead');
    assert.equal(await fsp.readFile(stepped.at('after-steps'), 'utf8'), 'written with the master an hour ahead');
    // admin report dates the heartbeats by the master's wall clock: an hour ahead now.
    const [first] = (await cluster.client.report()).chunkservers;
    assert.ok(Math.abs(first.lastHeartbeatMs - (Date.now() + HOUR_SEC * 1000)) < 60_000, `last heartbeat ${new Date(first.lastHeartbeatMs).toISOString()}`);

    stepFile(masterOffsetFile, -HOUR_SEC);
    cluster.chunkservers[2].kill('SIGKILL');
    const deadline = Date.now() + 30_000;
    while ((await alive()) !== 2) {
      assert.ok(Date.now() < deadline, 'a killed chunkserver is still alive to a master whose clock stepped back, 30 s on');
      await sleep(250);
    }
  });
});
