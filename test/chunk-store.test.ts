import { strict as assert } from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FsError } from '../server/common/fs-error';
import { crc32c } from '@node-rs/crc32';
import { BLOCK_SIZE, blockChecksum, encodeChecksums } from '../server/chunkserver/block-checksums';
import { CHECKSUMS_AT, chunkFilePath, dataOffsetFor, readHeader, withFile } from '../server/chunkserver/chunk-file';
import { allocAligned, directWritable } from '../server/chunkserver/direct-io';
import { ChunkStore, ChunkStoreOptions } from '../server/chunkserver/chunk-store';
import { SCRUB_CHUNK_FLOOR_BYTES, Scrubber } from '../server/chunkserver/scrubber';
import { SPARES_OPEN_AHEAD } from '../server/chunkserver/spare-files';
import { prng } from './helpers/prng';
import { modelWrite } from './helpers/chunk-model';
import { flipByte, flipChunkByte } from './helpers/corrupt';
import { expectErrno } from './helpers/errno';

/**
 * The chunkserver's local storage on real files: contents against an in-memory model,
 * checksums catching rot, the scrubber, data directories failing (removed, full) while running,
 * argument checking, versions across restarts, and concurrent writes to one chunk.
 */
const CHUNK = 256 * 1024;

interface LostReport {
  handles: number[];
  dir: string;
  error: FsError;
}

function randomBytes(rand: () => number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  for (let i = 0; i < length; i++) buf[i] = Math.floor(rand() * 256);
  return buf;
}

function modelTruncate(chunk: Buffer, size: number): Buffer {
  const next = Buffer.alloc(size);
  chunk.copy(next, 0, 0, Math.min(size, chunk.length));
  return next;
}

/** Where the data starts in the store's chunk files (their header and checksums come first). */
const DATA_AT = dataOffsetFor(CHUNK);

const legacyPath = (dir: string, handle: number, ext: 'data' | 'meta'): string => chunkFilePath(dir, handle).replace(/chunk$/, ext);

/** A chunk as the older format stored it: <handle>.data, and <handle>.meta (header, then checksums). */
function writeLegacyChunk(dir: string, handle: number, version: number, bytes: Buffer): void {
  const header = Buffer.alloc(32);
  header.write('CFSCHK01', 0, 'latin1');
  header.writeBigUInt64LE(BigInt(handle), 8);
  header.writeBigUInt64LE(BigInt(version), 16);
  header.writeUInt32LE(BLOCK_SIZE, 24);
  header.writeUInt32LE(crc32c(header.subarray(0, 28)), 28);
  const sums = [];
  for (let at = 0; at < bytes.length; at += BLOCK_SIZE) sums.push(blockChecksum(bytes.subarray(at, at + BLOCK_SIZE)));
  fs.mkdirSync(path.dirname(legacyPath(dir, handle, 'data')), { recursive: true });
  fs.writeFileSync(legacyPath(dir, handle, 'data'), bytes);
  fs.writeFileSync(legacyPath(dir, handle, 'meta'), Buffer.concat([header, encodeChecksums(sums)]));
}

/** The files under `dir` this process holds open. */
function openUnder(dir: string): string[] {
  return fs.readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      return target.startsWith(dir + '/') ? [target] : [];
    } catch {
      return []; // closed meanwhile (the readdir's own descriptor)
    }
  });
}

async function waitFor(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('chunk store', function () {
  this.timeout(20_000);
  let root: string;
  let dirA: string;
  let dirB: string;
  let lost: LostReport[];
  const stores: ChunkStore[] = [];

  async function open(dirs: string[], opts: Partial<ChunkStoreOptions> = {}): Promise<ChunkStore> {
    const store = await ChunkStore.open(dirs, {
      chunkSize: CHUNK,
      healthCheckMs: 60_000,
      onChunksLost: (handles, dir, error) => lost.push({ handles, dir, error }),
      ...opts,
    });
    stores.push(store);
    return store;
  }
  async function closeAll(): Promise<void> {
    while (stores.length) await stores.pop()!.close();
  }
  /** Handles 1..n in `dirA` and n+1..2n in `dirB`, each with some data; returns the store on both. */
  async function storeOnTwoDirs(n: number, opts: Partial<ChunkStoreOptions> = {}): Promise<ChunkStore> {
    for (const [dir, first] of [[dirA, 1], [dirB, n + 1]] as const) {
      const one = await open([dir]);
      for (let h = first; h < first + n; h++) {
        await one.create(h, 1);
        await one.write(h, 0, Buffer.alloc(1000, h));
      }
      await closeAll();
    }
    return open([dirA, dirB], opts);
  }

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'chunkfs-store-'));
    dirA = path.join(root, 'a');
    dirB = path.join(root, 'b');
    lost = [];
  });
  afterEach(async () => {
    await closeAll();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('matches an in-memory model over random writes, truncates and reads, across reopens', async () => {
    const rand = prng(20240601);
    const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
    // Offsets near block boundaries half of the time: that is where read-modify-write goes wrong.
    const offset = () => (rand() < 0.5 ? Math.min(CHUNK, Math.max(0, int(0, CHUNK / BLOCK_SIZE) * BLOCK_SIZE + int(-2, 2))) : int(0, CHUNK));
    const handles = [1, 2, 300];
    const model = new Map<number, Buffer>();
    const aligned = allocAligned(CHUNK)!;
    let store = await open([dirA]);
    for (const h of handles) {
      await store.create(h, 1);
      model.set(h, Buffer.alloc(0));
    }
    for (let i = 0; i < 300; i++) {
      const h = handles[int(0, handles.length - 1)];
      const chunk = model.get(h)!;
      const op = rand();
      if (op < 0.2) {
        // Page-aligned memory, offset and length: written with O_DIRECT, mixed with the rest.
        const at = int(0, CHUNK / 4096 - 1) * 4096;
        const data = aligned.subarray(0, int(1, (CHUNK - at) / 4096) * 4096);
        randomBytes(rand, data.length).copy(data);
        assert.ok(directWritable(data, at));
        await store.write(h, at, data, { durable: rand() < 0.5 });
        model.set(h, modelWrite(chunk, at, Buffer.from(data)));
      } else if (op < 0.5) {
        const at = offset();
        const data = randomBytes(rand, Math.min(CHUNK - at, rand() < 0.3 ? int(0, 10) : int(0, 3 * BLOCK_SIZE)));
        await store.write(h, at, data, { durable: rand() < 0.2 });
        model.set(h, modelWrite(chunk, at, data));
      } else if (op < 0.65) {
        const size = offset();
        await store.truncate(h, size, { durable: rand() < 0.2 });
        model.set(h, modelTruncate(chunk, size));
      } else {
        const at = offset();
        const length = int(0, CHUNK - at);
        const got = await store.read(h, at, length);
        assert.ok(got.equals(chunk.subarray(Math.min(at, chunk.length), Math.min(at + length, chunk.length))), `op ${i}: read(${h}, ${at}, ${length})`);
      }
      assert.equal(store.info(h).size, model.get(h)!.length, `op ${i}: size of ${h}`);
      if (i % 75 === 74) {
        await closeAll();
        store = await open([dirA]);
      }
    }
    for (const h of handles) {
      assert.ok((await store.read(h, 0, CHUNK)).equals(model.get(h)!), `final contents of ${h}`);
      assert.equal(await store.verify(h), true);
    }
    assert.deepEqual(store.corrupt(), []);
  });

  it('writes page-aligned pieces and reads large ranges with O_DIRECT, leaving nothing in the page cache', async () => {
    const store = await open([dirA]);
    await store.create(1, 1);
    const piece = allocAligned(CHUNK)!;
    randomBytes(prng(5), CHUNK).copy(piece);
    await store.write(1, 0, piece);
    const file = chunkFilePath(dirA, 1);
    // fincore: pages of the file resident in the page cache (a buffered write leaves them all);
    // the header's and the checksums' pages may stay, none of the data's.
    const resident = (): number => Number(execFileSync('fincore', ['--noheadings', '--raw', '--output', 'PAGES', file], { encoding: 'utf8' }).trim());
    assert.ok(resident() <= DATA_AT / 4096, `${resident()} pages resident`);
    assert.ok((await store.read(1, 0, CHUNK)).equals(piece));
    assert.ok(resident() <= DATA_AT / 4096, 'a large read goes around it too');
    // Unaligned memory, offset or length: a buffered write, same result.
    assert.equal(directWritable(piece.subarray(512, 4096 + 512), 0), false);
    assert.equal(directWritable(Buffer.alloc(4096), 0), false);
    assert.equal(directWritable(piece.subarray(0, 4096), 512), false);
    assert.equal(directWritable(piece.subarray(0, 4000), 0), false);
    assert.equal(directWritable(piece.subarray(4096, 8192), 4096), true);
    await store.write(1, 100, piece.subarray(0, 4000));
    assert.ok((await store.read(1, 100, 4000)).equals(piece.subarray(0, 4000)));
    assert.equal(await store.verify(1), true);
    // A chunk created by a direct write, in a spare (ready at once when found by the scan).
    await waitFor('spares made', () => fs.readdirSync(path.join(dirA, 'spare')).length > 0);
    await closeAll();
    const again = await open([dirA]);
    await again.write(2, 0, piece, { createAtVersion: 1 });
    assert.ok((await again.read(2, 0, CHUNK)).equals(piece));
    assert.equal(await again.verify(2), true);
  });

  it('handles writes and truncates on block boundaries, partial blocks and holes', async () => {
    const store = await open([dirA]);
    await store.create(1, 1);
    let model: Buffer = Buffer.alloc(0);
    const steps: Array<[string, () => Promise<void>, (b: Buffer) => Buffer]> = [];
    const write = (at: number, data: Buffer) => steps.push([`write ${at}+${data.length}`, () => store.write(1, at, data), (b) => modelWrite(b, at, data)]);
    const truncate = (size: number) => steps.push([`truncate ${size}`, () => store.truncate(1, size), (b) => modelTruncate(b, size)]);
    write(200_000, Buffer.from('abc')); // a hole of three whole blocks and a partial one
    write(BLOCK_SIZE - 1, Buffer.from('XY')); // straddles blocks 0 and 1
    write(2 * BLOCK_SIZE, Buffer.alloc(BLOCK_SIZE, 7)); // exactly block 2
    truncate(BLOCK_SIZE + 1);
    truncate(BLOCK_SIZE);
    write(BLOCK_SIZE, Buffer.from('Z')); // a new partial last block
    truncate(0);
    truncate(100_000); // growing is zeros
    write(CHUNK - 1, Buffer.from('!')); // the very last byte of a chunk
    truncate(3 * BLOCK_SIZE - 5);
    for (const [name, run, apply] of steps) {
      await run();
      model = apply(model);
      assert.ok((await store.read(1, 0, CHUNK)).equals(model), `after ${name}`);
      assert.equal(await store.verify(1), true, `verify after ${name}`);
    }
    await closeAll();
    const reopened = await open([dirA]);
    assert.ok((await reopened.read(1, 0, CHUNK)).equals(model));
    assert.equal((await reopened.read(1, model.length - 2, 10)).length, 2, 'short read at the end');
    assert.equal((await reopened.read(1, model.length, 10)).length, 0, 'empty read at the end');
  });

  it('a flipped byte fails reads of its block with EIO and marks only that chunk corrupt', async () => {
    const store = await open([dirA], { spareFiles: 0 });
    for (const h of [1, 2]) {
      await store.create(h, 1);
      await store.write(h, 0, Buffer.alloc(200_000, h));
    }
    await flipChunkByte(chunkFilePath(dirA, 1), BLOCK_SIZE + 5);
    await expectErrno(store.read(1, BLOCK_SIZE, 10), 'EIO', /checksum mismatch in chunk 1 block 1/);
    assert.ok((await store.read(1, 0, 1000)).equals(Buffer.alloc(1000, 1)), 'other blocks of the chunk still read');
    assert.ok((await store.read(2, 0, 200_000)).equals(Buffer.alloc(200_000, 2)), 'other chunks are fine');
    assert.deepEqual(store.corrupt(), [1]);
    assert.equal(await store.verify(1), false);
    assert.equal(await store.verify(2), true);
    // A write over part of the bad block must not recompute a checksum that blesses the rot:
    // alone (a small write on a quiet disk, no spares being made, is made on the main thread),
    // and while a large write keeps the disk busy (it goes through the thread pool then).
    await expectErrno(store.write(1, BLOCK_SIZE + 100, Buffer.from('x')), 'EIO', /checksum mismatch/);
    const busy = store.write(2, 0, Buffer.alloc(200_000, 2));
    await expectErrno(store.write(1, BLOCK_SIZE + 200, Buffer.from('y')), 'EIO', /checksum mismatch/);
    await busy;
    await expectErrno(store.read(1, BLOCK_SIZE, 10), 'EIO', /checksum mismatch/);
    await store.delete(1);
    assert.deepEqual(store.corrupt(), []);
  });

  it('a crash between data, checksums and header reads as corruption after restart, never as data', async () => {
    let store = await open([dirA]);
    for (const h of [1, 2, 3]) {
      await store.create(h, 1);
      await store.write(h, 0, Buffer.alloc(BLOCK_SIZE + 10, h));
    }
    await store.setVersion(3, 2);
    await closeAll();
    flipByte(chunkFilePath(dirA, 1), DATA_AT + BLOCK_SIZE + 3); // data, no checksum
    flipByte(chunkFilePath(dirA, 2), CHECKSUMS_AT); // block 0's checksum, no data
    fs.truncateSync(chunkFilePath(dirA, 3), DATA_AT + BLOCK_SIZE); // the header's new size, not the data
    // The version change's header slot torn: the header before it holds.
    const newest = await withFile(chunkFilePath(dirA, 3), 'r', readHeader);
    flipByte(chunkFilePath(dirA, 3), (newest!.state.seq % 2) * 4096 + 20);
    store = await open([dirA]);
    assert.deepEqual([1, 2, 3].map((h) => store.info(h).size), [BLOCK_SIZE + 10, BLOCK_SIZE + 10, BLOCK_SIZE + 10]);
    assert.equal(store.info(3).version, 1, 'the torn header slot is ignored');
    assert.ok((await store.read(1, 0, BLOCK_SIZE)).equals(Buffer.alloc(BLOCK_SIZE, 1)));
    await expectErrno(store.read(1, BLOCK_SIZE, 10), 'EIO', /checksum mismatch in chunk 1 block 1/);
    await expectErrno(store.read(2, 0, 1), 'EIO', /checksum mismatch in chunk 2 block 0/);
    assert.ok((await store.read(3, 0, BLOCK_SIZE)).equals(Buffer.alloc(BLOCK_SIZE, 3)));
    await expectErrno(store.read(3, BLOCK_SIZE, 1), 'EIO', /chunk 3 block 1: the file is shorter than the chunk/);
    assert.deepEqual(store.corrupt().sort(), [1, 2, 3]);
  });

  it('the scrubber finds corruption in a chunk nobody reads, once, at a bounded rate', async () => {
    const store = await open([dirA]);
    for (let h = 1; h <= 8; h++) {
      await store.create(h, 1);
      await store.write(h, 0, randomBytes(prng(h), CHUNK), { durable: false });
    }
    await flipChunkByte(chunkFilePath(dirA, 5), CHUNK - 1);
    const found: number[] = [];
    const fast = new Scrubber(store, { bytesPerSecond: 16 * 1024 * 1024, idleMs: 0, roundPauseMs: 10, onCorrupt: (h) => found.push(h) });
    fast.start();
    try {
      await waitFor('two scrub rounds', () => fast.rounds >= 2);
    } finally {
      await fast.stop();
    }
    assert.deepEqual(found, [5], 'reported once, though two rounds went by');
    assert.deepEqual(store.corrupt(), [5]);

    const slow = new Scrubber(store, { bytesPerSecond: 1024 * 1024, idleMs: 0, onCorrupt: (h) => found.push(h) });
    slow.start();
    await new Promise((r) => setTimeout(r, 500));
    await slow.stop();
    // 1 MiB/s for 0.5 s: the first chunk at once, then one every 250 ms.
    assert.ok(slow.bytesVerified >= CHUNK && slow.bytesVerified <= 3 * CHUNK, `verified ${slow.bytesVerified} bytes in 0.5 s`);
  });

  it('the scrubber counts a small chunk as SCRUB_CHUNK_FLOOR_BYTES against its rate', async () => {
    const store = await open([dirA]);
    for (let h = 1; h <= 40; h++) {
      await store.create(h, 1);
      await store.write(h, 0, Buffer.from(`small chunk ${h}`), { durable: false });
    }
    const scrubber = new Scrubber(store, { bytesPerSecond: 8 * SCRUB_CHUNK_FLOOR_BYTES, idleMs: 0, roundPauseMs: 0, onCorrupt: () => undefined });
    scrubber.start();
    await new Promise((r) => setTimeout(r, 500));
    await scrubber.stop();
    // Eight chunks' worth a second for 0.5 s: the first at once, then one every 125 ms.
    assert.ok(scrubber.chunksVerified >= 1 && scrubber.chunksVerified <= 6, `verified ${scrubber.chunksVerified} chunks in 0.5 s`);
  });

  it('a data directory removed at run time is noticed by the periodic check; the other keeps serving', async () => {
    const store = await storeOnTwoDirs(3, { healthCheckMs: 100 });
    fs.rmSync(dirA, { recursive: true });
    await waitFor('the chunks-lost report', () => lost.length > 0);
    assert.equal(lost.length, 1);
    assert.deepEqual(lost[0].handles.sort(), [1, 2, 3]);
    assert.equal(lost[0].dir, dirA);
    const usage = await store.usage();
    assert.deepEqual(usage.dirs.map((d) => [d.path, d.healthy, d.chunks]), [[dirA, false, 0], [dirB, true, 3]]);
    assert.match(usage.dirs[0].error, /ENOENT/);
    await expectErrno(store.read(1, 0, 10), 'ENOENT');
    assert.ok((await store.read(4, 0, 1000)).equals(Buffer.alloc(1000, 4)));
    await store.create(7, 1);
    await store.write(7, 0, Buffer.from('new'));
    assert.equal(store.info(7).dir, dirB);
    assert.equal((await store.read(7, 0, 10)).toString(), 'new');
  });

  it('a data directory removed at run time is noticed by the next operation that touches it', async () => {
    const store = await storeOnTwoDirs(3);
    fs.rmSync(dirA, { recursive: true });
    await expectErrno(store.write(2, 0, Buffer.from('x')), 'EIO', new RegExp(`data directory ${dirA} failed`));
    assert.deepEqual(lost.map((l) => [l.handles.sort(), l.dir]), [[[1, 2, 3], dirA]]);
    await expectErrno(store.read(2, 0, 1), 'ENOENT');
    await store.write(5, 0, Buffer.from('still here'));
    assert.equal((await store.read(5, 0, 10)).toString(), 'still here');
    await store.create(2, 2); // the master may place the lost chunk here again
    assert.equal(store.info(2).dir, dirB);
  });

  it('rejects bad arguments with exact errnos and changes nothing', async () => {
    const store = await open([dirA]);
    await store.create(1, 3);
    await store.write(1, 0, Buffer.alloc(1000, 1));
    const data = await store.read(1, 0, CHUNK);
    const before = { info: store.info(1), data }; // info after the read: reads stamp lastAccessMs
    const buf = Buffer.from('data');
    await expectErrno(store.write(1, -1, buf), 'EINVAL', /offset/);
    await expectErrno(store.write(1, 1.5, buf), 'EINVAL', /offset/);
    await expectErrno(store.write(1, CHUNK - 3, buf), 'EFBIG', /chunk size/);
    await expectErrno(store.write(1, CHUNK + 1, Buffer.alloc(0)), 'EFBIG');
    await expectErrno(store.read(1, -1, 10), 'EINVAL');
    await expectErrno(store.read(1, 0, CHUNK + 1), 'EINVAL', /chunk size/);
    await expectErrno(store.read(1, 0, NaN), 'EINVAL');
    await expectErrno(store.truncate(1, CHUNK + 1), 'EFBIG');
    await expectErrno(store.truncate(1, -5), 'EINVAL');
    await expectErrno(store.setVersion(1, -1), 'EINVAL');
    await expectErrno(store.create(1, 1), 'EEXIST');
    await expectErrno(store.create(-1, 1), 'EINVAL');
    await expectErrno(store.create(2 ** 53, 1), 'EINVAL');
    await expectErrno(store.read(99, 0, 1), 'ENOENT', /chunk 99 not found/);
    await expectErrno(store.write(99, 0, buf), 'ENOENT');
    await expectErrno(store.setVersion(99, 2), 'ENOENT');
    await expectErrno(store.verify(99), 'ENOENT');
    assert.throws(() => store.info(99), (err: unknown) => err instanceof FsError && err.code === 'ENOENT');
    assert.deepEqual(store.info(1), before.info);
    assert.ok((await store.read(1, 0, CHUNK)).equals(before.data));

    await store.create(2, 1);
    await store.write(2, 0, buf);
    await store.delete(2);
    await expectErrno(store.write(2, 0, buf), 'ENOENT');
    await expectErrno(store.read(2, 0, 1), 'ENOENT');
    await expectErrno(store.delete(2), 'ENOENT');
    assert.equal(fs.existsSync(chunkFilePath(dirA, 2)), false);
    assert.deepEqual(store.list().map((c) => c.handle), [1]);
  });

  it('keeps a version bump across a restart and clears debris of crashes', async () => {
    let store = await open([dirA]);
    await store.create(7, 1);
    await store.write(7, 0, Buffer.from('payload'));
    await store.setVersion(7, 2);
    await closeAll();
    fs.writeFileSync(chunkFilePath(dirA, 8), 'a chunk whose create did not finish (no valid header)');
    fs.writeFileSync(legacyPath(dirA, 9, 'data'), 'half of a chunk in the older format');
    store = await open([dirA]);
    assert.deepEqual(store.list().map(({ handle, version, size }) => ({ handle, version, size })), [{ handle: 7, version: 2, size: 7 }]);
    assert.equal((await store.read(7, 0, 100)).toString(), 'payload');
    assert.equal(fs.existsSync(chunkFilePath(dirA, 8)), false);
    assert.equal(fs.existsSync(legacyPath(dirA, 9, 'data')), false);
  });

  it('converts chunks of the older two-file format; rot in them stays detectable', async () => {
    const bytes = randomBytes(prng(9), BLOCK_SIZE + 300);
    writeLegacyChunk(dirA, 4, 6, bytes);
    writeLegacyChunk(dirA, 5, 1, Buffer.alloc(10, 5));
    fs.writeFileSync(`${legacyPath(dirA, 5, 'meta')}.tmp`, 'a header replacement that never got renamed');
    writeLegacyChunk(dirA, 6, 1, Buffer.alloc(BLOCK_SIZE + 1, 6));
    flipByte(legacyPath(dirA, 6, 'data'), BLOCK_SIZE); // rot: not blessed with a new checksum
    fs.writeFileSync(chunkFilePath(dirA, 4), 'a conversion cut short by a crash');
    // A conversion a crash cut short after removing .meta: the .chunk is the chunk.
    writeLegacyChunk(dirA, 7, 2, Buffer.alloc(300, 7));
    let store = await open([dirA]);
    await closeAll();
    writeLegacyChunk(dirA, 7, 2, Buffer.alloc(300, 7));
    fs.rmSync(legacyPath(dirA, 7, 'meta'));
    store = await open([dirA]);
    assert.deepEqual(store.list().map(({ handle, version, size }) => ({ handle, version, size })).sort((a, b) => a.handle - b.handle), [
      { handle: 4, version: 6, size: bytes.length },
      { handle: 5, version: 1, size: 10 },
      { handle: 6, version: 1, size: BLOCK_SIZE + 1 },
      { handle: 7, version: 2, size: 300 },
    ]);
    assert.ok((await store.read(4, 0, CHUNK)).equals(bytes));
    assert.ok((await store.read(5, 0, CHUNK)).equals(Buffer.alloc(10, 5)));
    assert.ok((await store.read(6, 0, BLOCK_SIZE)).equals(Buffer.alloc(BLOCK_SIZE, 6)), 'the good block of a rotten chunk reads');
    await expectErrno(store.read(6, BLOCK_SIZE, 1), 'EIO', /checksum mismatch in chunk 6 block 1/);
    assert.ok((await store.read(7, 0, CHUNK)).equals(Buffer.alloc(300, 7)));
    const left = fs.readdirSync(path.join(dirA, 'chunks'), { recursive: true }).map(String).filter((f) => /\.(data|meta|tmp)$/.test(f));
    assert.deepEqual(left, [], 'no file of the older format is left');
    assert.equal(await store.verify(4), true);
  });

  it('keeps a few spares open ahead for new chunks to take, and closes them with the store', async () => {
    const spareDir = path.join(dirA, 'spare');
    const store = await open([dirA]);
    // Once the spares are made (64 per directory, written through descriptors of their own),
    // only those opened ahead stay open.
    await waitFor('spares made and a few open ahead', () => fs.readdirSync(spareDir).length >= 64 && openUnder(spareDir).length === SPARES_OPEN_AHEAD, 10_000);
    for (let h = 1; h <= 3; h++) {
      // Each taken spare is replaced by another opened ahead.
      await waitFor('as many spares open ahead again', () => openUnder(spareDir).length === SPARES_OPEN_AHEAD);
      const inodes = new Set(openUnder(spareDir).map((f) => fs.statSync(f).ino));
      await store.write(h, 0, Buffer.alloc(100, h), { createAtVersion: 1 });
      assert.ok(inodes.has(fs.statSync(chunkFilePath(dirA, h)).ino), `chunk ${h} took a spare held open`);
      assert.ok((await store.read(h, 0, 200)).equals(Buffer.alloc(100, h)));
    }
    await closeAll();
    assert.deepEqual(openUnder(spareDir), [], 'no spare is left open');
    await waitFor('the chunk files closed', () => openUnder(dirA).length === 0); // (closed in the background)
  });

  it('a small chunk laid out where an earlier one was (one buffer serves them) has zeros past its checksums', async () => {
    // A store whose data starts early leaves its bytes where the next layout, for a store
    // whose data starts later (bigger chunks), keeps its checksum area.
    const big = 256 * 1024 * 1024;
    assert.ok(dataOffsetFor(big) > DATA_AT && dataOffsetFor(big) < DATA_AT + 65_000, 'the later area lies in the earlier data');
    const early = await open([dirA]);
    const late = await open([dirB], { chunkSize: big });
    for (const dir of [dirA, dirB]) {
      const spareDir = path.join(dir, 'spare');
      await waitFor('spares made', () => fs.readdirSync(spareDir).length >= 64 && openUnder(spareDir).length === SPARES_OPEN_AHEAD, 10_000);
    }
    await early.write(1, 0, Buffer.alloc(65_000, 0xee), { createAtVersion: 1 });
    await late.write(2, 0, Buffer.alloc(10, 2), { createAtVersion: 1 });
    const file = fs.readFileSync(chunkFilePath(dirB, 2));
    const area = file.subarray(CHECKSUMS_AT + 4, dataOffsetFor(big));
    assert.ok(area.equals(Buffer.alloc(area.length)), 'nothing of the earlier chunk in the checksum area');
    assert.ok((await late.read(2, 0, 100)).equals(Buffer.alloc(10, 2)));
    assert.equal(await late.verify(2), true);
  });

  it('a new chunk takes a spare file; one whose rename a crash undid is found among the spares', async () => {
    let store = await open([dirA]);
    const spareDir = path.join(dirA, 'spare');
    await waitFor('spares made', () => fs.readdirSync(spareDir).length > 0);
    await closeAll(); // the spares found on disk at the next open are ready at once
    store = await open([dirA]);
    const spares = new Map(fs.readdirSync(spareDir).map((name) => [fs.statSync(path.join(spareDir, name)).ino, name]));
    await store.write(1, 0, Buffer.alloc(100, 1), { createAtVersion: 3 });
    const taken = spares.get(fs.statSync(chunkFilePath(dirA, 1)).ino);
    assert.ok(taken, 'the chunk file is a former spare');
    assert.equal(fs.existsSync(path.join(spareDir, taken)), false);
    await closeAll();
    fs.renameSync(chunkFilePath(dirA, 1), path.join(spareDir, taken)); // the rename was never synced
    // Leftover data in a spare is harmless (gaps read as zeros); leftover checksums without a
    // header (a create a crash cut short) are not: such a spare is removed, not taken again.
    const writeAt = (file: string, at: number, bytes: Buffer): void => {
      const fd = fs.openSync(file, 'r+');
      fs.writeSync(fd, bytes, 0, bytes.length, at);
      fs.closeSync(fd);
    };
    const others = fs.readdirSync(spareDir).filter((name) => name !== taken);
    for (const name of others) writeAt(path.join(spareDir, name), DATA_AT, Buffer.alloc(DATA_AT + 4096, 0xee));
    const dirty = others[0];
    writeAt(path.join(spareDir, dirty), CHECKSUMS_AT, Buffer.alloc(8, 0xee));
    writeAt(path.join(spareDir, taken), DATA_AT + 100, Buffer.alloc(8000, 0xee)); // past the chunk's end
    fs.mkdirSync(path.join(spareDir, 'not-a-spare')); // left alone
    fs.mkdirSync(chunkFilePath(dirA, 5)); // a directory with a chunk's name, left alone too
    store = await open([dirA]);
    assert.ok(fs.statSync(path.join(spareDir, 'not-a-spare')).isDirectory());
    assert.ok(fs.statSync(chunkFilePath(dirA, 5)).isDirectory());
    assert.equal(fs.existsSync(path.join(spareDir, dirty)), false, 'the spare with leftover checksums is gone');
    assert.deepEqual(store.list().map(({ handle, version, size }) => ({ handle, version, size })), [{ handle: 1, version: 3, size: 100 }]);
    assert.ok((await store.read(1, 0, 200)).equals(Buffer.alloc(100, 1)));
    assert.ok(fs.existsSync(chunkFilePath(dirA, 1)), 'back in its place');
    await store.write(2, 5000, Buffer.alloc(10, 2), { createAtVersion: 1 });
    assert.ok((await store.read(2, 0, CHUNK)).equals(Buffer.concat([Buffer.alloc(5000), Buffer.alloc(10, 2)])));
    // The checksum area holds zeros past a chunk's end: after a large first write, and a shrink.
    const clearPast = (handle: number, blocks: number): boolean => {
      const area = fs.readFileSync(chunkFilePath(dirA, handle)).subarray(CHECKSUMS_AT + blocks * 4, DATA_AT);
      return area.equals(Buffer.alloc(area.length));
    };
    await store.write(3, 0, Buffer.alloc(3 * BLOCK_SIZE, 3), { createAtVersion: 1 });
    assert.ok(clearPast(3, 3), 'after a large first write');
    await store.truncate(3, BLOCK_SIZE + 1);
    assert.ok(clearPast(3, 2), 'after a shrink');
    assert.ok((await store.read(3, 0, CHUNK)).equals(Buffer.alloc(BLOCK_SIZE + 1, 3)));
    await store.write(1, 3000, Buffer.alloc(10, 7));
    assert.ok((await store.read(1, 0, CHUNK)).equals(Buffer.concat([Buffer.alloc(100, 1), Buffer.alloc(2900), Buffer.alloc(10, 7)])));
    await store.truncate(1, 50);
    await store.truncate(1, 4000);
    assert.ok((await store.read(1, 0, CHUNK)).equals(Buffer.concat([Buffer.alloc(50, 1), Buffer.alloc(3950)])));
    assert.deepEqual(store.corrupt(), []);
  });

  it('a chunk deleted and created again at the same version: of the two files a crash may leave, the later wins', async () => {
    let store = await open([dirA]);
    await store.write(1, 0, Buffer.alloc(4096, 0x0a), { createAtVersion: 5 });
    await closeAll();
    const before = fs.readFileSync(chunkFilePath(dirA, 1));
    store = await open([dirA]);
    await store.delete(1); // a corrupt replica deleted, then a good copy back at the same version
    await store.write(1, 0, Buffer.alloc(8192, 0x0b), { createAtVersion: 5 });
    await closeAll();
    // Power lost before the journal commit: the unlink and the rename out of spare/ both undone.
    fs.renameSync(chunkFilePath(dirA, 1), path.join(dirA, 'spare', 'later'));
    fs.writeFileSync(chunkFilePath(dirA, 1), before);
    store = await open([dirA]);
    assert.equal(store.info(1).size, 8192);
    assert.ok((await store.read(1, 0, CHUNK)).equals(Buffer.alloc(8192, 0x0b)));
    assert.equal(fs.existsSync(path.join(dirA, 'spare', 'later')), false, 'moved back where it belongs');
  });

  it('a chunk in two data directories at one version: the later-made copy is served, the older removed', async () => {
    // Chunk 7 made in a, then again in b; chunk 8 the other way round. Each store scans a first.
    for (const [handle, older, later] of [[7, dirA, dirB], [8, dirB, dirA]] as const) {
      for (const [dir, fill] of [[older, 0x0a], [later, 0x0b]] as const) {
        const one = await open([dir]);
        await one.write(handle, 0, Buffer.alloc(5000, fill), { createAtVersion: 3 });
        await closeAll();
      }
    }
    const store = await open([dirA, dirB]);
    for (const [handle, older, later] of [[7, dirA, dirB], [8, dirB, dirA]] as const) {
      assert.ok((await store.read(handle, 0, CHUNK)).equals(Buffer.alloc(5000, 0x0b)), `chunk ${handle}: the later copy`);
      assert.equal(fs.existsSync(chunkFilePath(older, handle)), false, `chunk ${handle}: the older copy is gone`);
      assert.ok(fs.existsSync(chunkFilePath(later, handle)));
    }
  });

  it('refuses one data directory under two paths (a symlink), and removes nothing', async () => {
    const store = await open([dirA]);
    await store.write(7, 0, Buffer.alloc(5000, 7), { createAtVersion: 3 });
    await closeAll();
    const alias = path.join(root, 'alias');
    fs.symlinkSync(dirA, alias);
    await expectErrno(open([dirA, alias]), 'EINVAL', /are one directory/);
    assert.ok((await (await open([alias])).read(7, 0, CHUNK)).equals(Buffer.alloc(5000, 7)));
  });

  it('a chunk made for smaller chunks refuses to grow past its checksums\' room (EFBIG), changing nothing', async () => {
    let store = await open([dirA]);
    await store.write(1, 0, Buffer.alloc(10, 1), { createAtVersion: 1 });
    await closeAll();
    store = await open([dirA], { chunkSize: 128 * 1024 * 1024 });
    const room = 64 * 1024 * 1024; // dataOffsetFor(256 KiB) leaves room for 1,024 checksums
    await expectErrno(store.write(1, room, Buffer.from('x')), 'EFBIG', /holds at most/);
    await expectErrno(store.truncate(1, room + 1), 'EFBIG', /holds at most/);
    await store.write(1, room - 1, Buffer.from('y'));
    assert.equal(store.info(1).size, room);
    assert.ok((await store.read(1, 0, 10)).equals(Buffer.alloc(10, 1)));
    assert.equal(await store.verify(1), true);
  });

  it('concurrent overlapping writes to one chunk end as some serial order of them', async () => {
    const store = await open([dirA]);
    const rand = prng(7);
    for (let round = 0; round < 5; round++) {
      const h = 100 + round;
      await store.create(h, 1);
      const writes = Array.from({ length: 5 }, (_, i) => {
        const offset = Math.floor(rand() * (CHUNK - 3 * BLOCK_SIZE));
        return { offset, data: Buffer.alloc(1000 + Math.floor(rand() * 2 * BLOCK_SIZE), i + 1) };
      });
      await Promise.all(writes.map((w) => store.write(h, w.offset, w.data, { durable: false })));
      const got = await store.read(h, 0, CHUNK);
      const serial = permutations(writes).some((order) => order.reduce<Buffer>((b, w) => modelWrite(b, w.offset, w.data), Buffer.alloc(0)).equals(got));
      assert.ok(serial, `round ${round}: the result is no serial order of the writes`);
      assert.equal(await store.verify(h), true);
    }
  });

  /**
   * Reads go through files held open and checksums kept in memory (open-chunk-files.ts): each
   * test reads first, so that the chunk is cached, then changes it in a way a stale descriptor
   * or stale checksums would get wrong.
   */
  describe('reads through held-open files', () => {
    /** Descriptors of this process open on files under `dir` (those of removed files included). */
    it('a deleted chunk reads as ENOENT, and one created again with its handle reads its new bytes', async () => {
      const store = await open([dirA]);
      await store.create(1, 1);
      await store.write(1, 0, Buffer.alloc(BLOCK_SIZE + 10, 1));
      assert.ok((await store.read(1, 0, 10)).equals(Buffer.alloc(10, 1)));
      await store.delete(1);
      await expectErrno(store.read(1, 0, 10), 'ENOENT', /chunk 1 not found/);
      await store.create(1, 2);
      assert.equal((await store.read(1, 0, 10)).length, 0, 'the new chunk is empty');
      await store.write(1, 0, Buffer.alloc(100, 7));
      assert.ok((await store.read(1, 0, 200)).equals(Buffer.alloc(100, 7)));
      await waitFor('the old files closed', () => openUnder(dirA).every((f) => !f.endsWith('(deleted)')));
    });

    it('writes and truncates are read back, on block boundaries and within blocks', async () => {
      const store = await open([dirA]);
      await store.create(1, 1);
      let model: Buffer = Buffer.alloc(0);
      const steps: Array<[string, () => Promise<void>, (b: Buffer) => Buffer]> = [
        ['write 3 blocks', () => store.write(1, 0, Buffer.alloc(3 * BLOCK_SIZE, 1)), (b) => modelWrite(b, 0, Buffer.alloc(3 * BLOCK_SIZE, 1))],
        ['overwrite within a block', () => store.write(1, 10, Buffer.alloc(5, 2)), (b) => modelWrite(b, 10, Buffer.alloc(5, 2))],
        ['shrink into a block', () => store.truncate(1, BLOCK_SIZE + 7), (b) => modelTruncate(b, BLOCK_SIZE + 7)],
        ['grow with a hole', () => store.truncate(1, 3 * BLOCK_SIZE), (b) => modelTruncate(b, 3 * BLOCK_SIZE)],
        ['write across blocks', () => store.write(1, BLOCK_SIZE - 3, Buffer.alloc(BLOCK_SIZE, 3)), (b) => modelWrite(b, BLOCK_SIZE - 3, Buffer.alloc(BLOCK_SIZE, 3))],
        ['truncate to 0', () => store.truncate(1, 0), (b) => modelTruncate(b, 0)],
        ['write again', () => store.write(1, 0, Buffer.alloc(20, 4)), (b) => modelWrite(b, 0, Buffer.alloc(20, 4))],
      ];
      for (const [name, change, apply] of steps) {
        await store.read(1, 0, CHUNK); // cache files and checksums at the old contents
        await change();
        model = apply(model);
        assert.ok((await store.read(1, 0, CHUNK)).equals(model), `after ${name}`);
      }
    });

    it('a version change is seen by the reads and writes after it', async () => {
      const store = await open([dirA]);
      await store.create(1, 1);
      await store.write(1, 0, Buffer.alloc(1000, 1));
      await store.read(1, 0, 10);
      await store.setVersion(1, 2);
      await store.write(1, 0, Buffer.alloc(1000, 2));
      assert.ok((await store.read(1, 0, 1000)).equals(Buffer.alloc(1000, 2)));
      assert.deepEqual(store.corrupt(), []);
      await closeAll();
      assert.equal((await open([dirA])).info(1).version, 2);
    });

    it('rot under cached checksums is still caught', async () => {
      const store = await open([dirA]);
      await store.create(1, 1);
      await store.write(1, 0, Buffer.alloc(2 * BLOCK_SIZE, 1));
      assert.ok((await store.read(1, BLOCK_SIZE, 10)).equals(Buffer.alloc(10, 1)));
      await flipChunkByte(chunkFilePath(dirA, 1), BLOCK_SIZE + 5);
      await expectErrno(store.read(1, BLOCK_SIZE, 10), 'EIO', /checksum mismatch in chunk 1 block 1/);
      assert.deepEqual(store.corrupt(), [1]);
    });

    it('a data directory removed while its files are held open fails the next read and reports its chunks lost', async () => {
      const store = await storeOnTwoDirs(2); // health checks every 60 s: only the read can notice
      assert.ok((await store.read(1, 0, 10)).equals(Buffer.alloc(10, 1)));
      fs.rmSync(dirA, { recursive: true });
      await expectErrno(store.read(1, 0, 10), 'EIO', new RegExp(`data directory ${dirA} failed`));
      assert.deepEqual(lost.map((l) => [l.handles.sort(), l.dir]), [[[1, 2], dirA]]);
      await expectErrno(store.read(1, 0, 10), 'ENOENT');
      assert.ok((await store.read(3, 0, 10)).equals(Buffer.alloc(10, 3)));
      await waitFor('the removed files closed', () => openUnder(path.join(dirA, 'chunks')).length === 0);
    });

    it("one chunk's files removed while held open: that chunk alone is lost", async () => {
      const store = await open([dirA]);
      for (const h of [1, 2]) {
        await store.create(h, 1);
        await store.write(h, 0, Buffer.alloc(100, h));
        await store.read(h, 0, 10);
      }
      fs.rmSync(chunkFilePath(dirA, 1));
      await expectErrno(store.read(1, 0, 10), 'EIO', /files of chunk 1 vanished/);
      assert.deepEqual(lost.map((l) => l.handles), [[1]]);
      assert.ok((await store.read(2, 0, 100)).equals(Buffer.alloc(100, 2)));
    });

    it("a chunk's file removed while held open fails the next write, alone or beside other disk work: that chunk is lost", async () => {
      // No spares: a round of them would keep the small write alone off the main thread.
      const store = await open([dirA], { spareFiles: 0 });
      for (const h of [1, 2, 3]) {
        await store.create(h, 1);
        await store.write(h, 0, Buffer.alloc(100, h));
      }
      fs.rmSync(chunkFilePath(dirA, 1));
      fs.rmSync(chunkFilePath(dirA, 2));
      await expectErrno(store.write(1, 10, Buffer.from('a')), 'EIO', /files of chunk 1 vanished/);
      const busy = store.write(3, 0, Buffer.alloc(200_000, 3));
      await expectErrno(store.write(2, 10, Buffer.from('b')), 'EIO', /files of chunk 2 vanished/);
      await busy;
      assert.deepEqual(lost.map((l) => l.handles).sort(), [[1], [2]]);
      assert.ok((await store.read(3, 0, 200_000)).equals(Buffer.alloc(200_000, 3)));
    });

    it('holds at most openChunks chunks open, reading many chunks at once correctly', async () => {
      const store = await open([dirA], { openChunks: 3 });
      const handles = Array.from({ length: 12 }, (_, i) => i + 1);
      for (const h of handles) {
        await store.create(h, 1);
        await store.write(h, 0, Buffer.alloc(2 * BLOCK_SIZE, h), { durable: false });
      }
      for (let round = 0; round < 3; round++) {
        const reads = handles.flatMap((h) => [0, BLOCK_SIZE].map(async (at) => ({ h, got: await store.read(h, at, BLOCK_SIZE) })));
        for (const { h, got } of await Promise.all(reads)) assert.ok(got.equals(Buffer.alloc(BLOCK_SIZE, h)), `chunk ${h}`);
      }
      await waitFor('evicted files closed', () => openUnder(path.join(dirA, 'chunks')).length <= 2 * 3); // (spares are held open too)
    });

    it('reads and writes of one chunk issued together see the writes in their order', async () => {
      const store = await open([dirA]);
      await store.create(1, 1);
      const ops: Array<Promise<Buffer | void>> = [];
      for (let i = 1; i <= 20; i++) {
        ops.push(store.write(1, 0, Buffer.alloc(BLOCK_SIZE + 1, i), { durable: false }));
        ops.push(store.read(1, 0, BLOCK_SIZE + 1), store.read(1, BLOCK_SIZE, 1));
      }
      const results = await Promise.all(ops);
      for (let i = 1; i <= 20; i++) {
        assert.ok((results[3 * i - 2] as Buffer).equals(Buffer.alloc(BLOCK_SIZE + 1, i)), `read after write ${i}`);
        assert.ok((results[3 * i - 1] as Buffer).equals(Buffer.alloc(1, i)), `second read after write ${i}`);
      }
    });
  });

  describe('on a file system that fills up', () => {
    let small: string;

    before(() => {
      assert.equal(process.getuid?.(), 0, 'this test mounts a tmpfs and must run as root');
    });
    /** A tmpfs of `size` at a new directory under root. */
    const tmpfs = (name: string, size: string): string => {
      const dir = path.join(root, name);
      fs.mkdirSync(dir);
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
      mounted.push(dir);
      return dir;
    };
    /** Fills the file system of `dir` to the last byte with a file of its own. */
    const fill = (dir: string): void => {
      assert.throws(() => fs.writeFileSync(path.join(dir, 'filler'), Buffer.alloc(1 << 20)), /ENOSPC/);
    };
    let mounted: string[] = [];

    beforeEach(() => {
      mounted = [];
      small = tmpfs('small', '512k');
    });
    afterEach(async () => {
      await closeAll();
      for (const dir of mounted) {
        try {
          execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
        } catch {
          // not mounted
        }
      }
    });

    it('a full file system fails the write with ENOSPC and stays in service: its chunks stay readable, new chunks go where there is room', async () => {
      let store = await open([small]);
      await store.create(1, 1);
      await store.create(2, 1);
      await closeAll();
      store = await open([small, dirB]);
      await store.write(1, 0, Buffer.alloc(CHUNK, 1)); // 512 KiB hold one chunk, not two
      await expectErrno(store.write(2, 0, Buffer.alloc(CHUNK, 2)), 'ENOSPC', new RegExp(`${small} is full`));
      assert.deepEqual(lost, [], 'no chunk lost: a full disk is not a failed one');
      const usage = await store.usage();
      assert.equal(usage.dirs[0].healthy, true);
      assert.ok((await store.read(1, 0, CHUNK)).equals(Buffer.alloc(CHUNK, 1)), 'a chunk written before reads back');
      await store.create(3, 1);
      await store.write(3, 0, Buffer.alloc(CHUNK, 3));
      assert.equal(store.info(3).dir, dirB, 'a new chunk goes to the directory with room');
      assert.ok((await store.read(3, 0, CHUNK)).equals(Buffer.alloc(CHUNK, 3)));
      // Room made again, the full directory takes writes again.
      await store.delete(2);
      await store.write(1, 0, Buffer.alloc(CHUNK, 4));
      assert.ok((await store.read(1, 0, CHUNK)).equals(Buffer.alloc(CHUNK, 4)));
    });

    it('an append that runs out of space leaves the chunk as it was: the bytes before it verify, also after a restart', async () => {
      let store = await open([small], { spareFiles: 0 });
      await store.create(1, 1);
      const kept = Buffer.alloc(1000, 7);
      await store.write(1, 0, kept);
      fill(small);
      // It lands in part (the rest of the partial block's page) beside new checksums and header.
      await expectErrno(store.write(1, 1000, Buffer.alloc(100_000, 8)), 'ENOSPC');
      assert.equal(store.info(1).size, 1000);
      assert.ok((await store.read(1, 0, 1000)).equals(kept), 'the acknowledged bytes verify');
      await closeAll();
      store = await open([small], { spareFiles: 0 });
      assert.equal(store.info(1).size, 1000, 'the header on disk has the old size');
      assert.ok((await store.read(1, 0, 1000)).equals(kept));
      fs.rmSync(path.join(small, 'filler'));
      await store.write(1, 1000, Buffer.alloc(100_000, 8));
      assert.ok((await store.read(1, 0, 101_000)).equals(Buffer.concat([kept, Buffer.alloc(100_000, 8)])));
      assert.deepEqual(lost, []);
    });

    it('a new chunk that finds its directory full goes to the next one, though the last look at its free space said otherwise', async () => {
      const smaller = tmpfs('smaller', '384k');
      const store = await open([small, smaller], { spareFiles: 0 });
      await store.create(1, 1); // looks at both directories' free space: the larger one is chosen
      assert.equal(store.info(1).dir, small);
      fill(small);
      await store.create(2, 1);
      await store.write(2, 0, Buffer.alloc(1000, 2));
      assert.equal(store.info(2).dir, smaller);
      assert.ok((await store.read(2, 0, 1000)).equals(Buffer.alloc(1000, 2)));
      assert.deepEqual(lost, []);
    });
  });
});

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}
