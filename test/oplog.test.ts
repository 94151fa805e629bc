import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DurableMasterState } from '../server/master/durable-master-state';
import { openMetaStore, MetaStore } from '../server/master/meta-store';
import type { MkdirMutation } from '../server/master/mutation';
import { decodeFrame, encodeFrame } from '../server/master/oplog/frame';
import { FILE_HEADER_BYTES, listMetaDir } from '../server/master/oplog/meta-dir';
import { RecoveryError } from '../server/master/oplog/recovery';
import { assertSameSnapshot, snapshot } from './helpers/ns-snapshot';
import { flipByte } from './helpers/corrupt';

/**
 * Defence layer 1 in-process, on real files: group commit, checkpoints, and recovery from every
 * kind of damage the issue names. Crashes of a real master process are in master-crash.test.ts.
 */
const NEVER = { everyTxns: 1e12, everySeconds: 1e6 };

describe('operation log, checkpoints and recovery', function () {
  this.timeout(60_000);
  let root: string;
  let dirs: string[];
  const open: MetaStore[] = [];
  let fatal: Error | null;

  function start(which = dirs): DurableMasterState {
    const store = openMetaStore(which, NEVER, (err) => (fatal = err));
    open.push(store);
    return new DurableMasterState(store);
  }
  /** Stops a master the way a crash would: nothing is flushed or written beyond what is durable. */
  async function stop(): Promise<void> {
    while (open.length) await open.pop()!.close();
  }

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'chunkfs-oplog-'));
    dirs = [path.join(root, 'a'), path.join(root, 'b')];
    fatal = null;
  });
  afterEach(async () => {
    await stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('frames detect any flipped bit', () => {
    const f = encodeFrame(7, 3, Buffer.from('hello'));
    assert.deepEqual(decodeFrame(f, 0)?.payload.toString(), 'hello');
    for (let i = 0; i < f.length; i++) {
      const bad = Buffer.from(f);
      bad[i] ^= 0x10;
      assert.equal(decodeFrame(bad, 0)?.txid === 7 && decodeFrame(bad, 0)?.payload.toString() === 'hello', false);
    }
  });

  it('concurrent mutations share fsyncs (group commit) and all survive a restart', async () => {
    const st = start();
    await Promise.all(Array.from({ length: 2000 }, (_, i) => st.commit(mkdir(st, `/d${i}`))));
    const rounds = (open[0].writer as unknown as { syncRounds: number }).syncRounds;
    assert.ok(rounds < 200, `2000 concurrent commits took ${rounds} fsync rounds`);
    const before = snapshot(st.ns);
    await stop();
    assertSameSnapshot(snapshot(start().ns), before);
  });

  it('recovers checkpoint + log after a mixed workload, and keeps only two checkpoints', async () => {
    const st = start();
    await workload(st, 0, 300);
    await st.checkpoint();
    await workload(st, 1, 300);
    await st.checkpoint();
    await workload(st, 2, 300);
    const c3 = await st.checkpoint();
    await workload(st, 3, 100); // in the log only
    const before = snapshot(st.ns);
    await stop();
    for (const d of dirs) {
      const l = listMetaDir(d);
      assert.deepEqual(l.checkpoints.map((c) => c.txid).slice(0, 1), [c3.txid]);
      assert.equal(l.checkpoints.length, 2);
      assert.ok(l.segments[0].firstTxid > 1, 'segments older than the older kept checkpoint are purged');
    }
    const again = start();
    assertSameSnapshot(snapshot(again.ns), before);
    assert.equal(again.status().checkpointTxid, c3.txid);
  });

  it('cuts a torn tail (never acknowledged) and goes on', async () => {
    const st = start();
    await workload(st, 0, 200);
    const before = snapshot(st.ns);
    await stop();
    const sizes = dirs.map((d) => lastSegment(d)).map((f) => [f, fs.statSync(f).size] as const);
    for (const [f] of sizes) fs.appendFileSync(f, encodeFrame(99999, 1, Buffer.from('{"op":"mkdir"')).subarray(0, 30));
    const again = start();
    assertSameSnapshot(snapshot(again.ns), before);
    for (const [f, size] of sizes) assert.equal(fs.statSync(f).size, size, `${f} truncated back`);
    await again.commit(mkdir(again, '/after-tail'));
    const after = snapshot(again.ns);
    await stop();
    assertSameSnapshot(snapshot(start().ns), after);
  });

  it('refuses to start when a record in the middle of the only log is corrupt, naming file and offset', async () => {
    const st = start([dirs[0]]);
    await workload(st, 0, 300);
    await stop();
    const { file, offset } = corruptMiddleRecord(dirs[0]);
    assert.throws(() => start([dirs[0]]), (err: Error) => {
      assert.ok(err instanceof RecoveryError, String(err));
      assert.ok(err.message.includes(file) && err.message.includes(`offset ${offset}`), err.message);
      return true;
    });
  });

  it('takes a record from the other directory when one copy is corrupt, and repairs that directory', async () => {
    const st = start();
    await workload(st, 0, 300);
    const before = snapshot(st.ns);
    const txid = st.status().txid;
    await stop();
    corruptMiddleRecord(dirs[0]);
    const again = start();
    assertSameSnapshot(snapshot(again.ns), before);
    await stop();
    assert.equal(listMetaDir(dirs[0]).checkpoints[0].txid, txid, 'repair checkpoint written');
    // The repaired directory alone is now enough.
    fs.rmSync(dirs[1], { recursive: true });
    assertSameSnapshot(snapshot(start([dirs[0]]).ns), before);
  });

  it('falls back to the previous checkpoint plus a longer log when the newest is corrupt everywhere', async () => {
    const st = start();
    await workload(st, 0, 200);
    await st.checkpoint();
    await workload(st, 1, 200);
    const newest = await st.checkpoint();
    await workload(st, 2, 50);
    const before = snapshot(st.ns);
    await stop();
    for (const d of dirs) flipByte(listMetaDir(d).checkpoints[0].path, 100);
    const again = start();
    assertSameSnapshot(snapshot(again.ns), before);
    assert.equal(listMetaDir(dirs[0]).checkpoints[0].txid > newest.txid, true, 'a good checkpoint replaces it');
  });

  it('uses the other copy when the newest checkpoint is corrupt in one directory, or truncated', async () => {
    const st = start();
    await workload(st, 0, 200);
    await st.checkpoint();
    const before = snapshot(st.ns);
    await stop();
    const ck = listMetaDir(dirs[0]).checkpoints[0].path;
    fs.truncateSync(ck, Math.floor(fs.statSync(ck).size / 2));
    assertSameSnapshot(snapshot(start().ns), before);
  });

  it('recreates a metadata directory deleted while the master was down', async () => {
    const st = start();
    await workload(st, 0, 200);
    const before = snapshot(st.ns);
    await stop();
    fs.rmSync(dirs[1], { recursive: true });
    assertSameSnapshot(snapshot(start().ns), before);
    await stop();
    fs.rmSync(dirs[0], { recursive: true });
    assertSameSnapshot(snapshot(start().ns), before, 'the recreated directory holds everything');
  });

  it('drops a directory removed at run time with an alarm, and keeps acknowledging', async () => {
    const st = start();
    await workload(st, 0, 50);
    fs.rmSync(dirs[1], { recursive: true });
    await waitFor(() => st.status().alarms.length > 0);
    assert.match(st.status().alarms[0], /metadata directory .*\/b failed/);
    assert.equal(st.status().metaDirs[1].healthy, false);
    await workload(st, 1, 50);
    const before = snapshot(st.ns);
    await stop();
    assertSameSnapshot(snapshot(start().ns), before);
  });

  it('fails every mutation with EIO, and calls the fatal hook, when no directory is left', async () => {
    const st = start();
    await workload(st, 0, 10);
    dirs.forEach((d) => fs.rmSync(d, { recursive: true }));
    await waitFor(() => fatal !== null);
    await assert.rejects(st.commit(mkdir(st, '/late')), /EIO/);
  });

  it('checkpoints without losing mutations committed while the checkpoint runs', async () => {
    const st = start();
    await workload(st, 0, 2000);
    const ckpt = st.checkpoint();
    const during = Promise.all(Array.from({ length: 3000 }, (_, i) => st.commit(mkdir(st, `/during${i}`))));
    await Promise.all([ckpt, during]);
    const before = snapshot(st.ns);
    await stop();
    assertSameSnapshot(snapshot(start().ns), before);
  });

  it('remembers the retry keys of logged changes across a restart, also those a checkpoint covers; a key logged twice replays', async () => {
    const st = start();
    await st.commit({ ...mkdir(st, '/a'), retryKey: 'client-a.1' });
    await st.checkpoint();
    await st.commit({ ...mkdir(st, '/b'), retryKey: 'client-a.2' });
    // A repeat the live master no longer knew (a key forgotten) is made and logged again: the
    // log must still replay.
    await st.commit({ ...mkdir(st, '/c'), retryKey: 'client-a.2' });
    await stop();
    const again = start();
    assert.ok(again.ns.retryKeys.has('client-a.1'), 'from the log a checkpoint covers');
    assert.ok(again.ns.retryKeys.has('client-a.2'), 'from the log replayed');
    assert.ok(!again.ns.retryKeys.has('client-a.3'));
    assert.ok(again.ns.lookupOrNull('/c'));
  });

  it('rejects an invalid mutation without logging it', async () => {
    const st = start();
    await st.commit(mkdir(st, '/x'));
    const txid = st.status().txid;
    await assert.rejects(st.commit(mkdir(st, '/x')), /EEXIST/);
    assert.equal(st.status().txid, txid);
  });
});

// ------------------------------------------------------------------ helpers

function mkdir(st: DurableMasterState, p: string): MkdirMutation {
  return { op: 'mkdir', path: p, mode: 0o755, uid: 1, gid: 2, ino: st.nextIno(), time: Date.now() };
}

/** A deterministic mix of every mutation kind, `n` rounds, under /w<seed>. */
async function workload(st: DurableMasterState, seed: number, n: number): Promise<void> {
  const base = `/w${seed}`;
  const time = () => Date.now();
  await st.commit(mkdir(st, base));
  for (let i = 0; i < n; i++) {
    const f = `${base}/f${i}`;
    await st.commit({ op: 'create', path: f, mode: 0o644, uid: 3, gid: 4, ino: st.nextIno(), time: time() });
    if (i % 3 === 0) await st.commit({ op: 'setattr', path: f, mode: 0o600, size: i * 10, time: time() });
    if (i % 8 === 0) await st.commit({ op: 'addChunk', path: f, index: i % 3, handle: st.ns.lastHandle + 1, version: 1 + (i % 5) });
    if (i % 5 === 0) await st.commit({ op: 'link', existing: f, path: `${f}.hl`, time: time() });
    if (i % 7 === 0) await st.commit({ op: 'symlink', path: `${f}.sl`, target: `f${i}`, uid: 0, gid: 0, ino: st.nextIno(), time: time() });
    if (i % 4 === 0) await st.commit({ op: 'rename', from: f, to: `${f}.moved`, time: time() });
    if (i % 6 === 1) await st.commit({ op: 'unlink', path: f, time: time() });
    if (i % 10 === 0) {
      await st.commit(mkdir(st, `${base}/sub${i}`));
      if (i % 20 === 0) await st.commit({ op: 'rmdir', path: `${base}/sub${i}`, time: time() });
    }
  }
}

function lastSegment(dir: string): string {
  const segs = listMetaDir(dir).segments;
  return segs[segs.length - 1].path;
}

/** Flips a payload byte of a record in the middle of the directory's first segment. */
function corruptMiddleRecord(dir: string): { file: string; offset: number } {
  const file = listMetaDir(dir).segments[0].path;
  const buf = fs.readFileSync(file);
  const offsets: number[] = [];
  for (let off = FILE_HEADER_BYTES, f = decodeFrame(buf, off); f; off = f.end, f = decodeFrame(buf, off)) offsets.push(off);
  const offset = offsets[Math.floor(offsets.length / 2)];
  flipByte(file, offset + 30);
  return { file, offset };
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
