import { strict as assert } from 'assert';
import { chunkHealth } from '../server/master/chunk-health';
import { fsck } from '../server/master/fsck';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChunkserverRegistry, Heartbeat } from '../server/master/chunkserver-registry';
import { ChunkserverRoster, ROSTER_FILE } from '../server/master/chunkserver-roster';
import type { ChunkserverState } from '../server/master/chunkserver-states';
import { Namespace } from '../server/master/namespace';

/** The master's soft state about chunkservers: registration, full reports, liveness, health. */
describe('chunkserver registry', () => {
  let now = 1_000_000;
  let reg: ChunkserverRegistry;
  const hb = (id: string, extra: Partial<Heartbeat> = {}): Heartbeat => ({
    id, address: `127.0.0.1:${id.length}`, rack: '', capacityBytes: 100, usedBytes: 10, freeBytes: 90, load: 0,
    fullReport: null, lostChunks: [], corruptChunks: [], ...extra,
  });
  const full = (pairs: Array<[number, number]>) => new Map(pairs);

  beforeEach(() => {
    now = 1_000_000;
    reg = new ChunkserverRegistry(5000, () => now);
  });
  afterEach(() => reg.stop());

  it('asks a new chunkserver for a full report until it has one', () => {
    assert.deepEqual(reg.heartbeat(hb('a')), { sendFullReport: true });
    assert.deepEqual(reg.heartbeat(hb('a')), { sendFullReport: true });
    assert.deepEqual(reg.heartbeat(hb('a', { fullReport: full([[1, 1], [2, 3]]) })), { sendFullReport: false });
    assert.equal(reg.list()[0].chunks, 2);
  });

  it('marks a silent chunkserver dead after the timeout, and alive again when it returns', () => {
    reg.heartbeat(hb('a', { fullReport: full([[7, 1]]) }));
    now += 4999;
    assert.deepEqual(reg.sweep(), []);
    assert.deepEqual(reg.replicasOf(7, 1).live, ['a']);
    now += 2;
    assert.deepEqual(reg.sweep(), ['a']);
    assert.equal(reg.list()[0].alive, false);
    assert.deepEqual(reg.replicasOf(7, 1).live, [], 'a dead server holds no live replica');
    reg.heartbeat(hb('a'));
    assert.equal(reg.list()[0].alive, true);
    assert.deepEqual(reg.sweep(), []);
  });

  it('does not count time the event loop was blocked as a chunkserver\'s silence', async function () {
    this.timeout(10_000);
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const blockLoop = (ms: number) => { const until = Date.now() + ms; while (Date.now() < until); };
    const real = new ChunkserverRegistry(200); // sweeps every 50 ms on the real clock
    try {
      real.heartbeat(hb('a'));
      blockLoop(600); // three dead timeouts with no chance to read a heartbeat
      real.heartbeat(hb('b')); // read after the stall, before the late sweep (a stall in a timer)
      await pause(120); // the late sweep, and the next one on time
      assert.equal(real.list()[0].alive, true, 'declared dead for the master\'s own stall');
      const b = real.list().find((cs) => cs.id === 'b')!;
      assert.ok(b.lastHeartbeatMs <= performance.now(), 'a heartbeat read after the stall was moved into the future');
      await pause(400); // silent while the loop runs: dead
      assert.equal(real.list()[0].alive, false);
    } finally {
      real.stop();
    }
  });

  it('after a restart, is starting until every chunkserver of the last run has sent its full report, or a dead timeout has passed; keeps the roster of the living', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roster-'));
    const file = path.join(dir, ROSTER_FILE);
    const roster = new ChunkserverRoster(dir);
    const saved = async (): Promise<string[]> => {
      await roster.written();
      return JSON.parse(fs.readFileSync(file, 'utf8')) as string[];
    };
    const regs: ChunkserverRegistry[] = [];
    try {
      const fresh = new ChunkserverRegistry(5000, () => now, undefined, roster);
      regs.push(fresh);
      assert.equal(fresh.starting(), null, 'a master with no roster waits for nobody');
      fresh.heartbeat(hb('a', { fullReport: full([]) }));
      fresh.heartbeat(hb('bb', { fullReport: full([]) }));
      assert.deepEqual(await saved(), ['a', 'bb'], 'the living are kept');
      fresh.stop();

      const again = new ChunkserverRegistry(5000, () => now, undefined, roster);
      regs.push(again);
      let settled = false;
      void again.starting()!.then(() => (settled = true));
      again.heartbeat(hb('a'));
      again.heartbeat(hb('bb'));
      again.heartbeat(hb('a', { fullReport: full([[1, 1]]) }));
      await new Promise((r) => setImmediate(r));
      assert.equal(settled, false, 'registered is not enough: the master waits for the full reports');
      again.heartbeat(hb('bb', { fullReport: full([[1, 1]]) }));
      await new Promise((r) => setImmediate(r));
      assert.equal(settled, true);
      assert.equal(again.starting(), null);
      assert.deepEqual(await saved(), ['a', 'bb'], 'saved once everyone is back');
      now += 6000;
      again.heartbeat(hb('a'));
      assert.deepEqual(again.sweep(), ['bb']);
      assert.deepEqual(await saved(), ['a'], 'a dead one leaves the roster');

      fs.writeFileSync(file, JSON.stringify(['a', 'gone']));
      const waited = Date.now();
      const timedOut = new ChunkserverRegistry(200, Date.now, undefined, roster);
      regs.push(timedOut);
      timedOut.heartbeat(hb('a', { fullReport: full([]) }));
      await timedOut.starting();
      assert.ok(Date.now() - waited >= 190, 'one missing: waited for the dead timeout');
      assert.equal(timedOut.starting(), null);

      timedOut.stop(); // its sweeps on the real clock would declare 'a' dead and save that
      await roster.written(); // the living after the wait: ['a']
      const stopped = new ChunkserverRegistry(5000, () => now, undefined, roster);
      regs.push(stopped);
      const waiting = stopped.starting()!;
      stopped.stop();
      await waiting; // stop() leaves nobody waiting...
      await roster.written();
      assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), ['a'], '...and keeps the roster: nobody had registered');
      fs.writeFileSync(file, '{"not": "a list"}');
      const unreadable = new ChunkserverRegistry(5000, () => now, undefined, roster);
      regs.push(unreadable);
      assert.equal(unreadable.starting(), null, 'an unreadable roster: nobody is waited for');
    } finally {
      regs.forEach((r) => r.stop());
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports the raw space of live chunkservers only (statfs)', () => {
    reg.heartbeat(hb('a', { capacityBytes: 1000, freeBytes: 600 }));
    reg.heartbeat(hb('b', { capacityBytes: 500, freeBytes: 100 }));
    assert.deepEqual(reg.capacity(), { capacityBytes: 1500, freeBytes: 700 });
    now += 6000;
    reg.heartbeat(hb('b', { capacityBytes: 500, freeBytes: 100 }));
    reg.sweep();
    assert.deepEqual(reg.capacity(), { capacityBytes: 500, freeBytes: 100 });
  });

  it('decommissioning replicas are used after the others but do not count; decommissioned ones only as the last copy', () => {
    const states = new Map<string, ChunkserverState>([['d', 'decommissioning'], ['x', 'decommissioned']]);
    const withStates = new ChunkserverRegistry(5000, () => now, (id) => states.get(id) ?? 'normal');
    try {
      for (const id of ['x', 'd', 'a']) withStates.heartbeat(hb(id, { fullReport: full([[1, 1], [2, 1]]) }));
      withStates.heartbeat(hb('b', { address: '127.0.0.1:7777', fullReport: full([[3, 1]]) }));
      assert.deepEqual(withStates.replicasOf(1, 1), { live: ['a', 'd'], counted: 1, corrupt: false, version: 1 });
      withStates.heartbeat(hb('a', { lostChunks: [1] }));
      assert.deepEqual(withStates.replicasOf(1, 1), { live: ['d'], counted: 0, corrupt: false, version: 1 });
      withStates.heartbeat(hb('d', { lostChunks: [1] }));
      assert.deepEqual(withStates.replicasOf(1, 1), { live: ['x'], counted: 0, corrupt: false, version: 1 }, 'the last copy');
      assert.deepEqual(withStates.list().map((cs) => [cs.id, cs.state]).sort(),
        [['a', 'normal'], ['b', 'normal'], ['d', 'decommissioning'], ['x', 'decommissioned']]);
      assert.equal(withStates.find('127.0.0.1:7777').id, 'b', 'found by address');
      assert.throws(() => withStates.find('127.0.0.1:9'), /ENOENT/);
      assert.deepEqual(withStates.handlesOn('d')?.sort(), [2]);
    } finally {
      withStates.stop();
    }
  });

  it('counts only replicas at the current version, drops lost ones, flags corrupt ones', () => {
    reg.heartbeat(hb('a', { fullReport: full([[1, 2], [2, 1]]) }));
    reg.heartbeat(hb('b', { fullReport: full([[1, 1]]) })); // stale version of chunk 1
    assert.deepEqual(reg.replicasOf(1, 2), { live: ['a'], counted: 1, corrupt: false, version: 2 });
    reg.heartbeat(hb('a', { lostChunks: [2], corruptChunks: [1] }));
    assert.deepEqual(reg.replicasOf(1, 2), { live: [], counted: 0, corrupt: true, version: 2 });
    assert.deepEqual(reg.replicasOf(2, 1), { live: [], counted: 0, corrupt: false, version: 1 });
    assert.equal(reg.list().find((c) => c.id === 'a')!.chunks, 1);
  });

  it('takes a newer version than the recorded one as current (a lease grant cut short by a crash)', () => {
    reg.heartbeat(hb('a', { fullReport: full([[5, 3]]) }));
    reg.heartbeat(hb('b', { fullReport: full([[5, 4]]) }));
    reg.heartbeat(hb('c', { fullReport: full([[5, 4]]) }));
    assert.deepEqual(reg.replicasOf(5, 3), { live: ['b', 'c'], counted: 2, corrupt: false, version: 4 });
    reg.heartbeat(hb('b', { corruptChunks: [5] }));
    reg.heartbeat(hb('c', { corruptChunks: [5] }));
    assert.deepEqual(reg.replicasOf(5, 3), { live: ['a'], counted: 1, corrupt: false, version: 3 }, 'corrupt newer copies do not count');
  });

  it('classifies every chunk of every file (hard links once) against the replication factor', () => {
    const ns = new Namespace();
    let ino = 1;
    const mk = (path: string) => ns.apply({ op: 'create', path, mode: 0o644, uid: 0, gid: 0, ino: ++ino, time: 1 });
    mk('/f');
    mk('/g');
    ns.apply({ op: 'link', existing: '/g', path: '/g2', time: 1 });
    // No mutation assigns chunks yet (the data-path issue adds it): set them directly here.
    ns.lookupOrNull('/f')!.chunks = [{ handle: 1, version: 1 }, { handle: 2, version: 1 }, { handle: 3, version: 1 }];
    ns.lookupOrNull('/g')!.chunks = [{ handle: 4, version: 1 }];
    for (const id of ['a', 'b', 'c', 'd']) {
      reg.heartbeat(hb(id, { fullReport: full(id === 'd' ? [[1, 1], [2, 1], [4, 1]] : [[1, 1], [4, 1]]) }));
    }
    reg.heartbeat(hb('b', { corruptChunks: [4] }));
    // chunk 1: 4 live (over); 2: 1 live (under); 3: none (missing); 4: 3 live + 1 corrupt (ok, corrupt)
    assert.deepEqual(chunkHealth(ns, reg), { total: 4, underReplicated: 1, overReplicated: 1, corrupt: 1, missing: 1 });
  });

  it('fsck lists the unhealthy files under a path, and is healthy while no chunk is missing', () => {
    const ns = new Namespace();
    let ino = 1;
    ns.apply({ op: 'mkdir', path: '/d', mode: 0o755, uid: 0, gid: 0, ino: ++ino, time: 1 });
    for (const p of ['/d/ok', '/d/weak', '/other']) ns.apply({ op: 'create', path: p, mode: 0o644, uid: 0, gid: 0, ino: ++ino, time: 1 });
    ns.apply({ op: 'addChunk', path: '/d/ok', index: 0, handle: 1, version: 1 });
    ns.apply({ op: 'addChunk', path: '/d/weak', index: 0, handle: 2, version: 1 });
    ns.apply({ op: 'addChunk', path: '/other', index: 0, handle: 3, version: 1 });
    for (const id of ['a', 'b', 'c']) reg.heartbeat(hb(id, { fullReport: full(id === 'a' ? [[1, 1], [2, 1]] : [[1, 1]]) }));
    const d = fsck(ns, reg, '/d');
    assert.equal(d.files, 2);
    assert.deepEqual(d.unhealthy.map((f) => [f.path, f.chunks.underReplicated]), [['/d/weak', 1]]);
    assert.equal(d.healthy, true, 'under-replicated, but every byte readable');
    const all = fsck(ns, reg, '/');
    assert.equal(all.files, 3);
    assert.equal(all.chunks.missing, 1);
    assert.equal(all.healthy, false, '/other has no replica at all');
  });

  it("measures each file's chunks against that file's own factor, and follows setReplication", () => {
    const ns = new Namespace();
    let ino = 1;
    const mk = (path: string, replication?: number) =>
      ns.apply({ op: 'create', path, mode: 0o644, uid: 0, gid: 0, ino: ++ino, time: 1, replication });
    mk('/one', 1);
    mk('/two', 2);
    mk('/legacy'); // a record from before per-file factors: the cluster default applies
    ns.apply({ op: 'addChunk', path: '/one', index: 0, handle: 1, version: 1 });
    ns.apply({ op: 'addChunk', path: '/two', index: 0, handle: 2, version: 1 });
    ns.apply({ op: 'addChunk', path: '/legacy', index: 0, handle: 3, version: 1 });
    for (const id of ['a', 'b', 'c']) reg.heartbeat(hb(id, { fullReport: full(id === 'a' ? [[1, 1], [2, 1], [3, 1]] : [[2, 1], [3, 1]]) }));
    // one: 1 of 1; two: 3 of 2 (over); legacy: 3 of the default 3
    assert.deepEqual(chunkHealth(ns, reg), { total: 3, underReplicated: 0, overReplicated: 1, corrupt: 0, missing: 0 });
    assert.deepEqual(fsck(ns, reg, '/').unhealthy.map((f) => [f.path, f.replication]), [['/two', 2]]);
    ns.defaultReplication = 4;
    ns.apply({ op: 'setReplication', path: '/two', replication: 3, time: 2 });
    assert.deepEqual(fsck(ns, reg, '/').unhealthy.map((f) => [f.path, f.replication, f.chunks.underReplicated]), [['/legacy', 4, 1]]);
  });
});
