import { strict as assert } from 'assert';
import { promises as fsp } from 'fs';
import { runCli } from './helpers/server-process';
import { TestCluster } from './helpers/test-cluster';
import { TestMount } from './helpers/test-mount';

const GRACE_SEC = 2;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Files unlinked while open by a mount that was then killed: another mount removes them once
 * the killed one has been gone for `--orphan-grace`, and never those of a mount still running,
 * also across a master outage longer than the grace.
 */
describe('files left unlinked while open by a killed mount', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let a: TestMount;
  let b: TestMount;

  before(async () => {
    cluster = await TestCluster.start('orphan-sweep', 3, ['--chunk-size', String(1 << 20)]);
    a = await TestMount.start(cluster, 'a', ['--orphan-grace', String(GRACE_SEC)]);
    b = await TestMount.start(cluster, 'b', ['--orphan-grace', String(GRACE_SEC)]);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await cluster?.stop();
  });

  /** Names in /.chunkfs-orphans starting with `prefix`. */
  const listed = async (prefix: string) =>
    (await cluster.client.readdirAll('/.chunkfs-orphans')).map((e) => e.name).filter((n) => n.startsWith(prefix));
  /** The kernel sends RELEASE after close(2) has returned: the hidden file goes a moment later. */
  async function untilNoHidden(what: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while ((await listed('.chunkfs-hidden-')).length > 0) {
      assert.ok(Date.now() < deadline, `${what} still hidden`);
      await sleep(50);
    }
  }
  const tagOf = (hidden: string) => hidden.slice('.chunkfs-hidden-'.length).split('-')[0];

  it('a master outage longer than the grace removes nobody\'s', async () => {
    const held: fsp.FileHandle[] = [];
    for (const m of [a, b]) {
      await fsp.writeFile(m.at('outage'), `open in ${m.dir}`);
      held.push(await fsp.open(m.at('outage'), 'r'));
      await fsp.unlink(m.at('outage'));
    }
    const hidden = await listed('.chunkfs-hidden-');
    assert.equal(hidden.length, 2);
    await cluster.restartMaster(() => sleep(3 * GRACE_SEC * 1000)); // the markers stand still meanwhile
    await sleep(3 * GRACE_SEC * 1000);
    assert.deepEqual((await listed('.chunkfs-hidden-')).sort(), hidden.sort());
    for (const [i, m] of [a, b].entries()) {
      assert.equal((await held[i].readFile()).toString(), `open in ${m.dir}`);
      await held[i].close();
    }
    await untilNoHidden('the outage test\'s files after their last close');
  });

  it('are removed with the killed mount\'s marker; a running mount\'s stay readable until their last close', async () => {
    await fsp.writeFile(a.at('from-a'), 'kept open in a');
    const inA = await fsp.open(a.at('from-a'), 'r');
    await fsp.unlink(a.at('from-a'));
    const [hiddenA] = await listed('.chunkfs-hidden-');
    assert.ok(hiddenA, 'a hid its open file');
    assert.ok((await listed('.chunkfs-mount-')).includes(`.chunkfs-mount-${tagOf(hiddenA)}`), 'a keeps a marker');

    await fsp.writeFile(b.at('from-b'), 'kept open in b');
    const inB = await fsp.open(b.at('from-b'), 'r');
    await fsp.unlink(b.at('from-b'));
    const hiddenB = (await listed('.chunkfs-hidden-')).find((n) => n !== hiddenA);
    assert.ok(hiddenB, 'b hid its open file');
    assert.notEqual(tagOf(hiddenB), tagOf(hiddenA));

    await a.kill(); // no release will ever come for a's file
    await inA.close().catch(() => undefined); // its mount is dead
    // The sweeper removes a tag's files, then its marker.
    const markerA = `.chunkfs-mount-${tagOf(hiddenA)}`;
    const deadline = Date.now() + 30_000;
    while ((await listed('.chunkfs-hidden-')).includes(hiddenA) || (await listed('.chunkfs-mount-')).includes(markerA)) {
      assert.ok(Date.now() < deadline, `${hiddenA} or its marker still there 30 s after its mount was killed`);
      await sleep(200);
    }
    assert.deepEqual(await listed('.chunkfs-mount-'), [`.chunkfs-mount-${tagOf(hiddenB)}`], 'the killed mount\'s marker went with its file; the running one\'s stays');

    // b's file outlives several graces while b runs, readable through its handle.
    await sleep(3 * GRACE_SEC * 1000);
    assert.deepEqual(await listed('.chunkfs-hidden-'), [hiddenB]);
    assert.equal((await inB.readFile()).toString(), 'kept open in b');
    await inB.close();
    await untilNoHidden('b\'s file after its last close');
  });

  it('refuses a grace out of 1..1000000 s or not a number as a usage error', async () => {
    for (const bad of ['-1', '0.5', 'soon', '2000000']) {
      const r = await runCli(['mount', '/nonexistent', '--masters', cluster.master.address, '--orphan-grace', bad]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /--orphan-grace must be 1\.\.1000000 seconds/);
    }
  });
});
