import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import * as grpc from '@grpc/grpc-js';
import type { DataStreamPortResponse__Output } from '../generated/chunkfs/chunkserver/DataStreamPortResponse';
import { ChunkClient, ChunkClientPool, failedReplica } from '../client/chunk-client';
import { DataStreamPool } from '../client/data-stream-client';
import { MAX_WRITE_RUNS } from '../server/common/data-stream-protocol';
import { MAX_CHUNK_IO_BYTES, protos } from '../server/common/proto';
import { chunkFilePath } from '../server/chunkserver/chunk-file';
import { ChunkRpc, startChunkRpc } from '../server/chunkserver/chunk-service';
import { ChunkStore } from '../server/chunkserver/chunk-store';
import { prng } from './helpers/prng';
import { modelWrite } from './helpers/chunk-model';
import { flipChunkByte } from './helpers/corrupt';
import { expectErrno } from './helpers/errno';

/**
 * The Chunkserver service over real chunk stores and real gRPC servers in this process: chain
 * replication over the data stream (contents, order under concurrent writers, stale versions,
 * a replica down, a sender lost midway, a write for an earlier process), reads on the data stream,
 * corruption, re-replication by CopyChunk, and the errno of every bad request.
 */
const CHUNK = 1024 * 1024;
const HANDLE = 7;

interface Replica {
  dir: string;
  store: ChunkStore;
  rpc: ChunkRpc;
  stopped: boolean;
}

describe('chunk service', function () {
  this.timeout(30_000);
  let root: string;
  let replicas: Replica[];
  let clients: ChunkClientPool;
  /** The client of replica i. */
  const at = (i: number): ChunkClient => clients.get(replicas[i].rpc.address);
  const address = (i: number): string => replicas[i].rpc.address;
  /** Replica i's whole chunk, as read through the service. */
  const contents = (i: number, version = 1): Promise<Buffer> => at(i).read(HANDLE, version, 0, CHUNK);

  async function startReplica(): Promise<Replica> {
    const dir = path.join(root, `r${replicas.length}`);
    const store = await ChunkStore.open([dir], { chunkSize: CHUNK, healthCheckMs: 60_000 });
    const replica = { dir, store, rpc: await startChunkRpc(store, '127.0.0.1:0'), stopped: false };
    replicas.push(replica);
    return replica;
  }

  async function stop(i: number): Promise<void> {
    replicas[i].stopped = true;
    await replicas[i].rpc.stop();
  }

  beforeEach(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'chunkfs-service-'));
    replicas = [];
    clients = new ChunkClientPool({ deadlineMs: 5000 });
    for (let i = 0; i < 3; i++) await startReplica();
    for (let i = 0; i < 3; i++) await at(i).create(HANDLE, 1);
  });
  afterEach(async () => {
    clients.closeAll();
    for (const r of replicas) {
      if (!r.stopped) await r.rpc.stop();
      await r.store.close();
    }
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('writes and truncates through a chain of three; every replica reads back the same bytes', async () => {
    const data = Buffer.alloc(300_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    await at(0).write(HANDLE, 1, 100_000, data, [address(1), address(2)]);
    const expected = modelWrite(Buffer.alloc(0), 100_000, data);
    for (let i = 0; i < 3; i++) assert.ok((await contents(i)).equals(expected), `replica ${i}`);

    await at(0).truncate(HANDLE, 1, 150_000, [address(1), address(2)]);
    for (let i = 0; i < 3; i++) assert.ok((await contents(i)).equals(expected.subarray(0, 150_000)), `replica ${i} after truncate`);
  });

  it('writes several runs of a chunk as one write through a chain of three, past its end and across blocks; every replica the same', async () => {
    const rand = prng(9);
    const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
    let expected: Buffer = Buffer.alloc(0);
    for (let round = 0; round < 20; round++) {
      // Disjoint runs in offset order, some a byte apart, some inside one 64 KiB block, the
      // last often past the chunk's end (a hole before it).
      const runs: { offset: number; length: number }[] = [];
      const parts: Buffer[] = [];
      for (let at = int(0, 5000); runs.length < int(2, 40) && at < CHUNK - 100;) {
        const length = int(1, Math.min(20_000, CHUNK - at));
        runs.push({ offset: at, length });
        parts.push(Buffer.alloc(length, int(1, 255)));
        at += length + int(1, 30_000);
      }
      await at(0).writeRuns(HANDLE, 1, runs, parts, [address(1), address(2)]);
      runs.forEach((r, i) => (expected = modelWrite(expected, r.offset, parts[i])));
      for (let i = 0; i < 3; i++) assert.ok((await contents(i)).equals(expected), `replica ${i}, round ${round}`);
    }
    for (const r of replicas) assert.equal(await r.store.verify(HANDLE), true);
  });

  it('refuses runs that overlap, go backwards, are empty, too many, do not add up or start elsewhere, or come with create, writing nothing; the connection stays in step', async () => {
    const { port, endpoint } = await dataStreamPort(0);
    const pool = new DataStreamPool(`127.0.0.1:${port}`, endpoint, `replica ${address(0)}`);
    const write = async (runs: { offset: number; length: number }[], length: number, create = false): Promise<void> => {
      const w = pool.open({ endpoint, handle: HANDLE, version: 1, offset: runs[0]?.offset ?? 0, length, create, chain: [], runs }, 5000);
      await w.send(Buffer.alloc(length, 9));
      await w.reply();
    };
    try {
      await expectErrno(write([{ offset: 0, length: 10 }, { offset: 5, length: 10 }], 20), 'EINVAL', /overlap/);
      await expectErrno(write([{ offset: 100, length: 10 }, { offset: 0, length: 10 }], 20), 'EINVAL', /out of order/);
      await expectErrno(write([{ offset: 0, length: 10 }, { offset: 20, length: 0 }], 10), 'EINVAL', /empty/);
      await expectErrno(write([{ offset: 0, length: 10 }, { offset: 20, length: 10 }], 25), 'EINVAL', /add up to 20 bytes, not the write's 25/);
      await expectErrno(write([{ offset: 0, length: 10 }, { offset: 20, length: 10 }], 20, true), 'EINVAL', /with create/);
      const many = Array.from({ length: MAX_WRITE_RUNS + 1 }, (_, i) => ({ offset: 2 * i, length: 1 }));
      await expectErrno(write(many, many.length), 'EINVAL', new RegExp(`number ${MAX_WRITE_RUNS + 1}`));
      const w = pool.open({ endpoint, handle: HANDLE, version: 1, offset: 3, length: 20, create: false, chain: [], runs: [{ offset: 0, length: 10 }, { offset: 20, length: 10 }] }, 5000);
      await w.send(Buffer.alloc(20));
      await expectErrno(w.reply(), 'EINVAL', /start at 0, not at the write's offset 3/);
      assert.equal((await contents(0)).length, 0, 'a refused write wrote something');
      await write([{ offset: 0, length: 2 }, { offset: 4, length: 2 }], 4);
      assert.deepEqual([...(await contents(0))], [9, 9, 0, 0, 9, 9]);
    } finally {
      pool.close();
    }
  });

  it('applies concurrent overlapping writes in the same order on every replica', async () => {
    const rand = prng(42);
    const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
    const chain = [address(1), address(2)];
    // Writes complete (at the head) in the order the replicas apply them: replaying them in
    // completion order gives the contents every replica must have. (With the chunk's turn not
    // held across the forward, a tiny write overtakes a large one on the way to the next
    // replica and this fails nearly every run.)
    const completed: { offset: number; data: Buffer }[] = [];
    const writer = async (id: number): Promise<void> => {
      for (let n = 0; n < 15; n++) {
        const offset = int(0, 200_000);
        // Large and tiny writes mixed: a tiny one sent after a large one overtakes it on the wire.
        const data = Buffer.alloc(rand() < 0.5 ? int(1, 100) : int(200_000, 800_000), id * 16 + n + 1);
        await at(0).write(HANDLE, 1, offset, data, chain);
        completed.push({ offset, data });
      }
    };
    const writing = Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map(writer));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(replicas[0].rpc.inFlight() > 0, 'the head counts no calls in flight while writers wait on it');
    await writing;
    assert.deepEqual(replicas.map((r) => r.rpc.inFlight()), [0, 0, 0]);

    let expected: Buffer = Buffer.alloc(0);
    for (const w of completed) expected = modelWrite(expected, w.offset, w.data);
    const head = await contents(0);
    for (let i = 1; i < 3; i++) assert.ok((await contents(i)).equals(head), `replica ${i} differs from the head`);
    assert.ok(head.equals(expected), 'the head did not apply writes in their completion order');
  });

  it('refuses a stale version with ESTALE on every replica and writes nothing', async () => {
    for (let i = 0; i < 3; i++) {
      await expectErrno(at(i).write(HANDLE, 2, 0, Buffer.from('stale')), 'ESTALE', /version 1 here, not 2/);
      await expectErrno(at(i).read(HANDLE, 2, 0, 10), 'ESTALE');
    }
    // Stale at the head: refused before forwarding, so the rest of the chain sees nothing either.
    await expectErrno(at(0).write(HANDLE, 2, 0, Buffer.from('stale'), [address(1), address(2)]), 'ESTALE');
    for (let i = 0; i < 3; i++) assert.equal((await contents(i)).length, 0, `replica ${i}`);

    // Stale in the middle (it missed a version bump): the error names it.
    await at(0).setVersion(HANDLE, 2);
    await at(2).setVersion(HANDLE, 2);
    const err = await expectErrno(at(0).write(HANDLE, 2, 0, Buffer.from('x'), [address(1), address(2)]), 'ESTALE');
    assert.equal(failedReplica(err), address(1));
  });

  it('fails a write whose chain has a replica down, naming that replica', async () => {
    const chain = [address(1), address(2)];
    await stop(2);
    let err = await expectErrno(at(0).write(HANDLE, 1, 0, Buffer.from('one'), chain), 'EIO', /unreachable/);
    assert.equal(failedReplica(err), address(2));
    // The head and the middle applied the write durably while forwarding it; only the dead
    // replica missed it. The client reports it; the master bumps the version on the live
    // replicas, so the dead one is stale by version when it comes back and is collected.
    assert.equal((await contents(0)).toString(), 'one');
    assert.equal((await contents(1)).toString(), 'one');

    await stop(1);
    err = await expectErrno(at(0).write(HANDLE, 1, 0, Buffer.from('two'), chain), 'EIO', /unreachable/);
    assert.equal(failedReplica(err), address(1));
    // The head has it; nothing past the dead middle replica was reached.
    assert.equal((await contents(0)).toString(), 'two');
  });

  it('drops on every replica a write whose sender vanishes midway; the chunk stays writable', async () => {
    const chain = [address(1), address(2)];
    const data = Buffer.alloc(3 * 1024 * 1024 - 1000, 0x5a);
    const write = await at(0).openWrite({ handle: HANDLE, version: 1, offset: 0, length: data.length, create: false, chain });
    // Past the head's forwarding batch, so the rest of the chain has received part of it too.
    await write.send(data.subarray(0, 2 * 1024 * 1024));
    write.abort();
    await expectErrno(write.reply(), 'EIO', /abandoned/);
    // Each replica gave up its turn on the chunk: the next write goes through, and it is all they have.
    await at(0).write(HANDLE, 1, 0, Buffer.from('after'), chain);
    for (let i = 0; i < 3; i++) assert.equal((await contents(i)).toString(), 'after', `replica ${i}`);
    assert.deepEqual(replicas.map((r) => r.rpc.inFlight()), [0, 0, 0]);
  });

  /** Replica i's data stream endpoint, asked for as a client does. */
  async function dataStreamPort(i: number): Promise<DataStreamPortResponse__Output> {
    const stub = new protos.chunkfs.chunkserver.Chunkserver(address(i), grpc.credentials.createInsecure());
    try {
      return await new Promise<DataStreamPortResponse__Output>((resolve, reject) =>
        stub.dataStreamPort({}, (err, reply) => (err || !reply ? reject(err) : resolve(reply))));
    } finally {
      stub.close();
    }
  }

  it('serves reads on the data stream with exact errnos, each refusal leaving the connection in step', async () => {
    await at(0).write(HANDLE, 1, 0, Buffer.from('some bytes'));
    const { port, endpoint } = await dataStreamPort(0);
    const pool = new DataStreamPool(`127.0.0.1:${port}`, endpoint, `replica ${address(0)}`);
    const read = (change: Partial<{ endpoint: number; handle: number; version: number; offset: number; length: number }>): Promise<Buffer> =>
      pool.read({ endpoint, handle: HANDLE, version: 1, offset: 0, length: 100, ...change }, 5000);
    try {
      assert.equal((await read({})).toString(), 'some bytes');
      await expectErrno(read({ endpoint: endpoint + 1 }), 'EIO', /wrong endpoint/);
      await expectErrno(read({ version: 2 }), 'ESTALE', /at version 1 here, not 2/);
      await expectErrno(read({ handle: HANDLE + 100 }), 'ENOENT');
      await expectErrno(read({ length: MAX_CHUNK_IO_BYTES + 1 }), 'EINVAL', /allowed per call/);
      await expectErrno(read({ offset: CHUNK - 10, length: 11 }), 'EINVAL', /passes the chunk size/);
      // Replies after refusals are still read whole and in order.
      assert.equal((await read({ offset: 5, length: 3 })).toString(), 'byt');
      assert.equal((await read({ offset: 20 })).length, 0);
    } finally {
      pool.close();
    }
  });

  it('sets versions on the data stream with exact errnos, each refusal leaving the connection in step', async () => {
    await at(0).write(HANDLE, 1, 0, Buffer.from('versioned'));
    const { port, endpoint } = await dataStreamPort(0);
    const pool = new DataStreamPool(`127.0.0.1:${port}`, endpoint, `replica ${address(0)}`);
    const setVersion = (change: Partial<{ endpoint: number; handle: number; version: number }>): Promise<void> =>
      pool.setVersion({ endpoint, handle: HANDLE, version: 2, ...change }, 5000);
    try {
      await expectErrno(setVersion({ endpoint: endpoint + 1 }), 'EIO', /wrong endpoint/);
      await expectErrno(setVersion({ version: 0 }), 'EINVAL', /not a chunk version/);
      await expectErrno(setVersion({ handle: HANDLE + 100 }), 'ENOENT');
      await expectErrno(pool.read({ endpoint, handle: HANDLE, version: 2, offset: 0, length: 10 }, 5000), 'ESTALE', /at version 1 here, not 2/);
      await setVersion({});
      await setVersion({}); // the same version again: nothing to do
      await expectErrno(setVersion({ version: 1 }), 'ESTALE', /later than 1/);
      assert.equal((await pool.read({ endpoint, handle: HANDLE, version: 2, offset: 0, length: 10 }, 5000)).toString(), 'versioned');
    } finally {
      pool.close();
    }
  });

  it('fails a read on the data stream with ETIMEDOUT when the chunkserver does not answer', async () => {
    const silent = net.createServer(() => undefined); // accepts, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const pool = new DataStreamPool(`127.0.0.1:${(silent.address() as net.AddressInfo).port}`, 1, 'replica silent');
    try {
      await expectErrno(pool.read({ endpoint: 1, handle: HANDLE, version: 1, offset: 0, length: 10 }, 300), 'ETIMEDOUT', /replica silent did not answer/);
    } finally {
      pool.close();
      silent.close();
    }
  });

  it('refuses a write meant for an earlier chunkserver process on the same port, writing nothing', async () => {
    const { port, endpoint } = await dataStreamPort(0);
    const pool = new DataStreamPool(`127.0.0.1:${port}`, endpoint + 1, `replica ${address(0)}`);
    try {
      const write = pool.open({ endpoint: endpoint + 1, handle: HANDLE, version: 1, offset: 0, length: 3, create: false, chain: [] }, 5000);
      await write.send(Buffer.from('old'));
      await expectErrno(write.reply(), 'EIO', /wrong endpoint/);
    } finally {
      pool.close();
    }
    assert.equal((await contents(0)).length, 0);
  });

  it('fails a read with EIO "checksum mismatch" on a corrupt replica while the others serve', async () => {
    const data = Buffer.alloc(200_000, 0xab);
    await at(0).write(HANDLE, 1, 0, data, [address(1), address(2)]);
    await flipChunkByte(chunkFilePath(replicas[1].dir, HANDLE), 123_456);

    const err = await expectErrno(contents(1), 'EIO', /checksum mismatch/);
    assert.equal(failedReplica(err), address(1));
    assert.ok((await contents(0)).equals(data));
    assert.ok((await contents(2)).equals(data));

    // Nor can it be the source of a copy; the failed copy leaves nothing behind.
    const fresh = await startReplica();
    await expectErrno(at(3).copy(HANDLE, 1, address(1)), 'EIO', /checksum mismatch/);
    assert.deepEqual(fresh.store.list(), []);
  });

  it('copies a chunk to a fresh chunkserver with CopyChunk', async () => {
    const data = Buffer.alloc(CHUNK);
    const rand = prng(7);
    for (let i = 0; i < data.length; i++) data[i] = Math.floor(rand() * 256);
    await at(0).write(HANDLE, 1, 0, data, [address(1), address(2)]);
    await at(0).create(HANDLE + 1, 3);
    await at(0).write(HANDLE + 1, 3, 10, Buffer.from('short'));
    const fresh = await startReplica();

    assert.equal(await at(3).copy(HANDLE, 1, address(0)), CHUNK);
    assert.ok((await contents(3)).equals(data));
    assert.equal(await at(3).copy(HANDLE + 1, 3, address(0)), 15);
    assert.ok((await at(3).read(HANDLE + 1, 3, 0, CHUNK)).equals(modelWrite(Buffer.alloc(0), 10, Buffer.from('short'))));
    // Already there at that version: nothing to do.
    assert.equal(await at(3).copy(HANDLE, 1, address(0)), 0);

    // The source holds another version: ESTALE naming the source, and no partial copy left.
    await at(1).setVersion(HANDLE, 2);
    assert.deepEqual(await at(3).deleteChunks([HANDLE]), []);
    const err = await expectErrno(at(3).copy(HANDLE, 1, address(1)), 'ESTALE');
    assert.equal(failedReplica(err), address(1));
    assert.deepEqual(fresh.store.list().map((c) => c.handle), [HANDLE + 1]);
  });

  it('answers bad requests with exact errnos', async () => {
    const unknown = 999;
    await expectErrno(at(0).read(HANDLE, 1, -1, 10), 'EINVAL', /offset must be a non-negative integer/);
    await expectErrno(at(0).write(HANDLE, 1, 0.5, Buffer.from('a')), 'EINVAL', /offset must be a non-negative integer/);
    await expectErrno(at(0).read(HANDLE, 1, 0, MAX_CHUNK_IO_BYTES + 1), 'EINVAL', /allowed per call/);
    await expectErrno(at(0).read(HANDLE, 1, CHUNK - 10, 11), 'EINVAL', /passes the chunk size/);
    await expectErrno(at(0).write(HANDLE, 1, 0, Buffer.alloc(MAX_CHUNK_IO_BYTES + 1)), 'EINVAL', /allowed per call/);
    await expectErrno(at(0).write(HANDLE, 1, CHUNK - 1, Buffer.from('ab')), 'EFBIG');
    await expectErrno(at(0).truncate(HANDLE, 1, CHUNK + 1), 'EFBIG');
    await expectErrno(at(0).write(HANDLE, 1, 0, Buffer.from('a'), [address(1), address(1)]), 'EINVAL', /repeats a replica/);
    await expectErrno(at(0).write(HANDLE, 1, 0, Buffer.from('a'), [address(0)]), 'EINVAL', /repeats a replica/);

    await expectErrno(at(0).read(unknown, 1, 0, 10), 'ENOENT');
    await expectErrno(at(0).write(unknown, 1, 0, Buffer.from('a')), 'ENOENT');
    await expectErrno(at(0).truncate(unknown, 1, 0), 'ENOENT');
    await expectErrno(at(0).setVersion(unknown, 2), 'ENOENT');
    // A batch of deletions: each replica there goes, each one missing is answered ENOENT.
    await at(0).create(unknown + 1, 1);
    const failures = await at(0).deleteChunks([unknown, unknown + 1]);
    assert.deepEqual(failures.map((f) => [f.handle, f.error.code]), [[unknown, 'ENOENT']]);
    await expectErrno(at(0).read(unknown + 1, 1, 0, 10), 'ENOENT');
    await expectErrno(at(0).deleteChunks([-1]), 'EINVAL', /handle must be a non-negative integer/);

    await expectErrno(at(0).create(HANDLE, 1), 'EEXIST');
    await expectErrno(at(0).create(unknown, 0), 'EINVAL', /not a chunk version/);
    await expectErrno(at(0).read(HANDLE, 0, 0, 10), 'EINVAL', /not a chunk version/);
    await at(0).setVersion(HANDLE, 3);
    await at(0).setVersion(HANDLE, 3);
    await expectErrno(at(0).setVersion(HANDLE, 2), 'ESTALE', /later than 2/);
    // A chunk here at another version is not overwritten by a copy.
    await expectErrno(at(0).copy(HANDLE, 1, address(1)), 'EEXIST');
  });
});
