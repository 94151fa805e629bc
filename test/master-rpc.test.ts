import * as assert from 'assert';
import { execFileSync } from 'child_process';
import { MasterClient, type Made } from '../client/master-client';
import { FsError } from '../server/common/fs-error';
import { ChunkClientPool } from '../client/chunk-client';
import { ChunkManager } from '../server/master/chunk-manager';
import { ChunkserverRegistry } from '../server/master/chunkserver-registry';
import { Decommissioner } from '../server/master/decommission';
import { MasterRpc, type MasterServices, startMasterRpc } from '../server/master/master-rpc';
import type { MasterState } from '../server/master/master-state';
import type { Attr } from '../server/master/inode';
import type { Mutation } from '../server/master/mutation';
import { Namespace } from '../server/master/namespace';
import { XATTR_CREATE } from '../server/master/xattrs';

/** The RPC translation layer over an in-memory MasterState: what goes into commit(), and errnos. */
describe('master RPC', function () {
  let committed: Mutation[];
  let rpc: MasterRpc;
  let client: MasterClient;
  let chunkservers: ChunkserverRegistry;
  let peers: ChunkClientPool;
  let services: MasterServices;
  /** Every commit waits 2 s after it is applied (its log write, say). */
  let slowCommits: boolean;

  beforeEach(async function () {
    committed = [];
    slowCommits = false;
    const ns = new Namespace(0);
    const state: MasterState = {
      ns,
      nextIno: () => ns.lastIno + 1,
      commit: async (m) => {
        if (m.op === 'mkdir' && m.path === '/never-durable') return new Promise(() => undefined);
        const attr = ns.apply(m);
        committed.push(m);
        if (m.op === 'mkdir' && m.path === '/slow-log') await new Promise((resolve) => setTimeout(resolve, 300));
        if (slowCommits) await new Promise((resolve) => setTimeout(resolve, 2000));
        return attr;
      },
      durable: async () => undefined,
      checkpoint: async () => ({ txid: committed.length, bytes: 1, durationMs: 2 }),
      status: () => ({ txid: committed.length, checkpointTxid: 0, epoch: 1, inodes: ns.inodeCount, metaDirs: [], alarms: [] }),
    };
    chunkservers = new ChunkserverRegistry(5000, () => performance.now(), (id) => ns.chunkserverStates.get(id));
    peers = new ChunkClientPool();
    const chunks = new ChunkManager(state, chunkservers, peers, { chunkSize: 1 << 20 });
    const decommissioner = new Decommissioner(state, chunkservers);
    services = { state, chunkservers, chunks, decommissioner };
    rpc = await startMasterRpc(services, '127.0.0.1:0');
    client = new MasterClient(rpc.address, { deadlineMs: 5000 });
  });

  afterEach(async function () {
    chunkservers.stop();
    peers.closeAll();
    client.close();
    await rpc.stop();
  });

  async function rejectsWith(errno: string, call: Promise<unknown>): Promise<void> {
    await assert.rejects(call, (err: unknown) => err instanceof FsError && err.code === errno);
  }

  it('answers the bound port and plain attributes', async function () {
    assert.match(rpc.address, /^127\.0\.0\.1:[1-9]\d*$/);
    const { attr, parent } = await client.mkdir('/d', 0o750, { uid: 7, gid: 8 });
    assert.deepStrictEqual(parent, await client.getattr('/'), 'the parent as it is after the mkdir');
    assert.deepStrictEqual(await client.getattr('/d'), attr);
    assert.strictEqual(attr.mode & 0o7777, 0o750);
    assert.deepStrictEqual([attr.uid, attr.gid], [7, 8]);
    const [made] = committed;
    assert.ok(made.op === 'mkdir');
    assert.deepStrictEqual(made, { op: 'mkdir', path: '/d', mode: 0o750, uid: 7, gid: 8, ino: attr.ino, time: made.time });
    // Every change to a directory's entries answers with the directory as it is afterwards.
    assert.deepStrictEqual((await client.create('/d/f', 0o644, true)).parent, await client.getattr('/d'));
    assert.deepStrictEqual((await client.symlink('f', '/d/l')).parent, await client.getattr('/d'));
    assert.deepStrictEqual(await client.unlink('/d/l'), await client.getattr('/d'));
    await client.mkdir('/d/e', 0o755);
    const afterRmdir = await client.rmdir('/d/e');
    assert.deepStrictEqual(afterRmdir, await client.getattr('/d'));
    assert.strictEqual(afterRmdir!.nlink, 2, 'nlink back down');
    await client.unlink('/d/f');
  });

  it('create without O_EXCL opens an existing file without committing', async function () {
    const first = await client.create('/f', 0o600, false);
    assert.strictEqual(first.created, true);
    const again = await client.create('/f', 0o644, false);
    assert.deepStrictEqual([again.attr, again.created], [first.attr, false]);
    assert.strictEqual(committed.length, 1);
    await rejectsWith('EEXIST', client.create('/f', 0o644, true));
    await client.mkdir('/dir', 0o755);
    await rejectsWith('EISDIR', client.create('/dir', 0o644, false));
  });

  it('setattr commits only the fields given', async function () {
    await client.create('/f', 0o644, true);
    const attr = await client.setattr('/f', { size: 12345, mtimeMs: 1.5 });
    assert.strictEqual(attr.size, 12345);
    assert.strictEqual(attr.mtimeMs, 1.5);
    const m = committed[1];
    // A size change also records the chunk size, so replay drops the same chunks past the end.
    assert.deepStrictEqual(Object.keys(m).sort(), ['chunkSize', 'mtimeMs', 'op', 'path', 'size', 'time']);
    assert.ok(m.op === 'setattr' && m.chunkSize === 1 << 20);
    await client.setattr('/f', { mode: 0o600 });
    assert.deepStrictEqual(Object.keys(committed[2]).sort(), ['mode', 'op', 'path', 'time']);
    // A grow-only size drops no chunk: no chunk size recorded.
    assert.strictEqual((await client.setattr('/f', { size: 10, growOnly: true })).size, 12345);
    assert.deepStrictEqual(Object.keys(committed[3]).sort(), ['growOnly', 'op', 'path', 'size', 'time']);
  });

  it('refuses bad numbers with EINVAL before committing', async function () {
    await client.create('/f', 0o644, true);
    await rejectsWith('EINVAL', client.mkdir('/m', 0o10000));
    await rejectsWith('EINVAL', client.setattr('/f', { mode: 0o17777 }));
    await rejectsWith('EINVAL', client.setattr('/f', { size: 2 ** 60 }));
    await rejectsWith('EINVAL', client.setattr('/f', { atimeMs: NaN }));
    assert.strictEqual(committed.length, 1);
  });

  it('rename with RENAME_NOREPLACE: EEXIST over an existing name, committing nothing; a new name is a plain rename', async function () {
    await client.create('/a', 0o644, true);
    await client.create('/b', 0o644, true);
    const before = committed.length;
    await rejectsWith('EEXIST', client.rename('/a', '/b', 'noReplace'));
    await rejectsWith('EEXIST', client.rename('/a', '/a', 'noReplace'));
    assert.strictEqual(committed.length, before, 'nothing committed');
    await client.rename('/a', '/c', 'noReplace');
    assert.deepStrictEqual(committed.slice(before).map((m) => m.op), ['rename']);
    await rejectsWith('ENOENT', client.getattr('/a'));
    await client.rename('/c', '/b'); // without the flag, the plain atomic replace
    await rejectsWith('ENOENT', client.getattr('/c'));
  });

  it('carries namespace errnos and paged readdir', async function () {
    await rejectsWith('ENOENT', client.getattr('/missing'));
    await rejectsWith('EINVAL', client.getattr('relative'));
    await client.mkdir('/d', 0o755);
    for (let i = 0; i < 25; i++) await client.create(`/d/f${i}`, 0o644, true);
    const page = await client.readdir('/d', '', 10);
    assert.strictEqual(page.entries.length, 10);
    assert.notStrictEqual(page.cookie, '');
    assert.strictEqual((await client.readdirAll('/d')).length, 25);
    await rejectsWith('ENOTEMPTY', client.rmdir('/d'));
    await client.symlink('f0', '/d/l');
    assert.strictEqual(await client.readlink('/d/l'), 'f0');
    await client.rename('/d/f1', '/d/g1');
    await client.link('/d/g1', '/d/h1');
    await client.unlink('/d/g1');
    assert.strictEqual((await client.getattr('/d/h1')).nlink, 1);
    assert.deepStrictEqual(await client.statfs(), { capacityBytes: 0, freeBytes: 0, files: 28 });
  });

  it('a listing carries every name and the attributes getattr gives, over several pages', async function () {
    await client.mkdir('/d', 0o750);
    const names = ['plain', 'ünïcödé-名前', 'x'.repeat(255), 'sp ace', 'é'.repeat(127)];
    for (const n of names) await client.create(`/d/${n}`, 0o640, true);
    // A size past 32 bits, within the largest file (with 1 MiB chunks here).
    await client.setattr('/d/plain', { size: 2 ** 37 + 7, atimeMs: 1.5, mtimeMs: 2 ** 41 + 0.25 });
    await client.setReplication('/d/plain', 2);
    await client.symlink('plain', '/d/link');
    await client.mkdir('/d/sub', 0o700);
    await client.link('/d/plain', '/d/hard');
    const listed: Array<{ name: string; attr: Attr }> = [];
    for (let cookie = '', first = true; first || cookie !== ''; first = false) {
      const page = await client.readdir('/d', cookie, 3);
      listed.push(...page.entries);
      cookie = page.cookie;
    }
    assert.deepStrictEqual(listed.map((e) => e.name).sort(), [...names, 'link', 'sub', 'hard'].sort());
    for (const e of listed) assert.deepStrictEqual(e.attr, await client.getattr(`/d/${e.name}`), e.name);
    assert.deepStrictEqual(await client.readdirAll('/d/sub'), []);
  });

  it('admin calls map MasterState directly', async function () {
    assert.deepStrictEqual(await client.checkpoint(), { txid: 0, bytes: 1, durationMs: 2 });
    const { heapUsedBytes, ...status } = await client.status();
    assert.deepStrictEqual(status, { txid: 0, checkpointTxid: 0, epoch: 1, inodes: 1, metaDirs: [], alarms: [] });
    assert.ok(heapUsedBytes > 0);
  });

  it('decommission: logs the state once, finds servers by id or address, refuses bad requests changing nothing', async function () {
    const register = (n: number) => chunkservers.heartbeat({
      id: `cs${n}`, address: `127.0.0.1:${7000 + n}`, rack: '', capacityBytes: 1e9, usedBytes: 0, freeBytes: 1e9, load: 0,
      fullReport: new Map(), lostChunks: [], corruptChunks: [],
    });
    for (let n = 0; n < 3; n++) register(n);
    await rejectsWith('ENOENT', client.decommission('cs9'));
    await rejectsWith('ENOENT', client.decommission('127.0.0.1:7009'));
    await rejectsWith('ENOENT', client.decommission(''));
    // Three servers and a replication factor of 3: a drain could never finish.
    await rejectsWith('ENOSPC', client.decommission('cs1'));
    assert.deepStrictEqual(committed, []);
    assert.ok((await client.report()).chunkservers.every((cs) => cs.state === 'normal'));

    register(3);
    const cs = await client.decommission('127.0.0.1:7001');
    assert.deepStrictEqual([cs.id, cs.state], ['cs1', 'decommissioning']);
    assert.deepStrictEqual(committed, [{ op: 'setChunkserverState', id: 'cs1', state: 'decommissioning' }]);
    // Asking again changes nothing; neither does naming it by id.
    assert.strictEqual((await client.decommission('cs1')).state, 'decommissioning');
    assert.strictEqual(committed.length, 1);
    const states = (await client.report()).chunkservers.map((c) => [c.id, c.state]);
    assert.deepStrictEqual(states.sort(), [['cs0', 'normal'], ['cs1', 'decommissioning'], ['cs2', 'normal'], ['cs3', 'normal']]);
    // A second one would leave two servers taking replicas.
    await rejectsWith('ENOSPC', client.decommission('cs2'));
    assert.strictEqual(committed.length, 1);
  });

  // Regression: protobuf's unsigned fields turned size -1 into 0 (truncating the file to nothing)
  // and 2.5 into 2 on the way, so the master accepted them; the client now refuses them first.
  it('refuses negative or fractional numbers before they are sent, changing nothing', async function () {
    await client.create('/f', 0o644, true);
    const before = await client.setattr('/f', { size: 1000 });
    const committedBefore = committed.length;
    for (const changes of [{ size: -1 }, { size: 2.5 }, { mode: 2.5 }, { mode: -1 }, { uid: -1 }, { gid: 1.5 }, { mtimeMs: NaN }]) {
      await rejectsWith('EINVAL', client.setattr('/f', changes));
    }
    await rejectsWith('EINVAL', client.mkdir('/d', 2.5));
    await rejectsWith('EINVAL', client.create('/g', -1, true));
    await rejectsWith('EINVAL', client.mkdir('/d', 0o755, { uid: -1, gid: 0 }));
    assert.deepStrictEqual(await client.getattr('/f'), before);
    assert.strictEqual(committed.length, committedBefore);
  });

  it('times out with ETIMEDOUT when the master does not answer, and the session goes on', async function () {
    const slow = new MasterClient(rpc.address, { deadlineMs: 300 });
    try {
      await rejectsWith('ETIMEDOUT', slow.mkdir('/never-durable', 0o755));
      await slow.mkdir('/fine', 0o755); // same stream, still usable
    } finally {
      slow.close();
    }
  });

  it('settles the calls issued just before a close: answered, or EIO, never left hanging', async function () {
    const brief = new MasterClient(rpc.address, { deadlineMs: 60_000 });
    const calls = [brief.getattr('/'), brief.mkdir('/made-before-close', 0o755)];
    await new Promise((r) => setImmediate(r)); // the batch leaves; the session port is still being asked for
    brief.close();
    for (const outcome of await Promise.allSettled(calls)) {
      if (outcome.status === 'rejected') assert.equal((outcome.reason as FsError).code, 'EIO');
    }
    await rejectsWith('EIO', brief.getattr('/'));
  });

  it('fails the calls in flight with EIO when the master goes away', async function () {
    this.timeout(15_000); // stop() waits out its grace period for the call that never ends
    const patient = new MasterClient(rpc.address, { deadlineMs: 60_000 });
    const pending = patient.mkdir('/never-durable', 0o755);
    await new Promise((r) => setTimeout(r, 100));
    await rpc.stop();
    await rejectsWith('EIO', pending);
    patient.close();
  });

  it('a change caught by a cut connection is sent again with its retry key and made once, whatever the change', async function () {
    this.timeout(30_000);
    const riding = new MasterClient(rpc.address, { deadlineMs: 10_000, rideOutBreaks: true });
    try {
      await client.mkdir('/d', 0o755);
      for (const f of ['/d/f', '/d/gone', '/d/from']) await client.create(f, 0o644, true);
      await client.mkdir('/d/empty', 0o755);
      await client.setxattr('/d/from', 'user.k', Buffer.from('v'), 0);
      const ino = async (p: string) => (await client.getattr(p)).ino;
      const absent = async (p: string) => rejectsWith('ENOENT', client.getattr(p));
      const cases: Array<[string, () => Promise<unknown>, (result: unknown) => Promise<void>]> = [
        ['mkdir', () => riding.mkdir('/d/m', 0o755), async (r) => assert.equal((r as Made).attr.ino, await ino('/d/m'))],
        ['create', () => riding.create('/d/c', 0o644, true), async (r) => assert.equal((r as Made).attr.ino, await ino('/d/c'))],
        ['symlink', () => riding.symlink('f', '/d/s'), async () => assert.equal(await client.readlink('/d/s'), 'f')],
        ['link', () => riding.link('/d/f', '/d/l'), async (r) => assert.equal((r as Attr).nlink, 2)],
        ['unlink', () => riding.unlink('/d/gone'), () => absent('/d/gone')],
        ['rmdir', () => riding.rmdir('/d/empty'), () => absent('/d/empty')],
        ['rename', () => riding.rename('/d/from', '/d/to', 'noReplace'), () => absent('/d/from')],
        ['setxattr', () => riding.setxattr('/d/f', 'user.a', Buffer.from('1'), XATTR_CREATE), async () => assert.equal((await client.getxattr('/d/f', 'user.a')).toString(), '1')],
        ['removexattr', () => riding.removexattr('/d/to', 'user.k'), () => rejectsWith('ENODATA', client.getxattr('/d/to', 'user.k'))],
      ];
      slowCommits = true;
      for (const [name, change, check] of cases) {
        const before = committed.length;
        let settled = false;
        const outcome = change().finally(() => (settled = true));
        while (committed.length === before) await new Promise((r) => setTimeout(r, 5)); // applied, not yet answered
        // Cut every session connection (as a restarting master or a network fault would).
        const cut = execFileSync('ss', ['-K', 'dst', '127.0.0.1', 'dport', '=', String(rpc.sessionPort)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
        assert.ok(cut.includes(`:${rpc.sessionPort}`), `ss -K cut no session connection (root and CONFIG_INET_DIAG_DESTROY are needed): ${cut}`);
        assert.ok(!settled, `${name} was answered before its connection was cut: no resend tested`);
        await check(await outcome);
        assert.equal(committed.length, before + 1, `${name} made once`);
      }
    } finally {
      riding.close();
    }
  });

  describe('directory leases', function () {
    let leaser: MasterClient;
    beforeEach(() => {
      // (A master's first second waits out any lease of the one before it: deadlines above that.)
      leaser = new MasterClient(rpc.address, { deadlineMs: 2000, dirLeases: true });
    });
    afterEach(() => leaser.close());

    const absent = (dir: Attr, name: string): boolean => leaser.leasedDirs!.absent(dir.ino, name);

    it('the maker of a directory knows which names are absent from it, through its own changes', async function () {
      const { attr: d } = await leaser.mkdir('/d', 0o755);
      assert.ok(absent(d, 'x'), 'a new directory is empty');
      await leaser.create('/d/x', 0o644, true);
      assert.ok(!absent(d, 'x'), 'created');
      await leaser.rename('/d/x', '/d/y');
      assert.ok(absent(d, 'x') && !absent(d, 'y'), 'renamed');
      await leaser.link('/d/y', '/d/hard');
      await leaser.symlink('y', '/d/soft');
      await leaser.mknod('/d/fifo', 0o10644, 0);
      assert.ok(!absent(d, 'hard') && !absent(d, 'soft') && !absent(d, 'fifo'), 'linked, symlinked, made');
      await leaser.unlink('/d/y');
      assert.ok(absent(d, 'y') && !absent(d, 'hard'), 'unlinked');
      const { attr: sub } = await leaser.mkdir('/d/sub', 0o755);
      assert.ok(!absent(d, 'sub') && absent(sub, 'anything'), 'a subdirectory: a name here, and a lease of its own');
      await leaser.rename('/d/hard', '/d/sub/moved');
      assert.ok(absent(d, 'hard') && !absent(sub, 'moved'), 'moved between two leased directories');
      await leaser.rmdir('/d/sub').catch(() => undefined); // ENOTEMPTY: a refusal changes nothing
      assert.ok(!absent(d, 'sub') && !absent(sub, 'moved'));
      assert.equal((await client.mkdir('/plain', 0o755)).attr.ino > 0, true);
      assert.equal(client.leasedDirs, null, 'a client that asks for none holds none');
    });

    it("another session's change recalls the lease: the holder forgets the directory, says so, and the change goes on", async function () {
      // Leases of a minute: only the recall can let the other session's change through in time.
      const longRpc = await startMasterRpc(services, '127.0.0.1:0', { dirLeaseMs: 60_000, firstMaster: true });
      const holder = new MasterClient(longRpc.address, { deadlineMs: 5000, dirLeases: true });
      const other = new MasterClient(longRpc.address, { deadlineMs: 5000 });
      try {
        const { attr: d } = await holder.mkdir('/d', 0o755);
        await holder.create('/d/own', 0o644, true);
        assert.ok(holder.leasedDirs!.absent(d.ino, 'theirs'));
        await other.create('/d/theirs', 0o644, true);
        assert.ok(!holder.leasedDirs!.absent(d.ino, 'theirs'), 'the name another session made is not answered as absent');
        assert.equal(holder.leasedDirs!.size, 0, 'the lease is gone');
        // The holder's next change there brings no lease back.
        await holder.create('/d/after', 0o644, true);
        assert.equal(holder.leasedDirs!.size, 0, 'not renewed');
        // Nor does the other session's next change wait: the holder gave the lease up.
        await other.rename('/d/theirs', '/d/renamed');
        assert.ok((await other.getattr('/d/renamed')).ino > 0);
        // The holder's own change and the other's at once: the reply that ends the lease can
        // come in the batch with the recall, and the recall is still answered.
        await holder.mkdir('/e', 0o755);
        await Promise.all([holder.create('/e/holders', 0o644, true), other.create('/e/others', 0o644, true)]);
        // A recall that comes before the grant it recalls (a new directory's reply waits for its
        // log record): answered, and the grant, when it comes, is not taken.
        const making = holder.mkdir('/slow-log', 0o755);
        while (!(await other.getattr('/slow-log').then(() => true, () => false)));
        await other.create('/slow-log/theirs', 0o644, true);
        const { attr: slow } = await making;
        assert.ok(!holder.leasedDirs!.absent(slow.ino, 'theirs'));
      } finally {
        holder.close();
        other.close();
        await longRpc.stop();
      }
    });

    it('a holder that does not give its lease up holds a change back only until the lease runs out', async function () {
      await leaser.mkdir('/d', 0o755);
      leaser.close(); // gone without a word: its lease lives on at the master
      await client.create('/d/theirs', 0o644, true);
      assert.ok((await client.getattr('/d/theirs')).ino > 0);
    });

    it('a new directory is leased from the turn it appears in, not once its log record is durable', async function () {
      const making = leaser.mkdir('/slow-log', 0o755);
      // While its record is being written, the directory is there for everyone.
      while (!(await client.getattr('/slow-log').then(() => true, () => false)));
      await client.create('/slow-log/theirs', 0o644, true);
      const { attr: d } = await making;
      assert.ok(!absent(d, 'theirs'), 'the name another session made meanwhile is not answered as absent');
    });

    it('a rename between two links of one file changes nothing, and the lease says so', async function () {
      const { attr: d } = await leaser.mkdir('/d', 0o755);
      await leaser.create('/d/a', 0o644, true);
      await leaser.link('/d/a', '/d/b');
      await leaser.rename('/d/a', '/d/b');
      assert.ok((await client.getattr('/d/a')).ino > 0, 'both names stay');
      assert.ok(!absent(d, 'a') && !absent(d, 'b'));
    });

    it('a change whose outcome is unknown (no answer) forgets every lease', async function () {
      const { attr: d } = await leaser.mkdir('/d', 0o755);
      assert.ok(absent(d, 'x'));
      await rejectsWith('ETIMEDOUT', leaser.mkdir('/never-durable', 0o755));
      assert.ok(!absent(d, 'x'), 'forgotten');
      assert.equal(leaser.leasedDirs!.size, 0);
    });
  });
});
