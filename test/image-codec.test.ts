import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { attrOf, Inode } from '../server/master/inode';
import type { Mutation } from '../server/master/mutation';
import { Namespace } from '../server/master/namespace';
import { readCheckpoint, verifyCheckpoint, writeCheckpoint } from '../server/master/oplog/checkpoint-file';
import { decodeFrame, encodeFrame, Frame } from '../server/master/oplog/frame';
import { checkpointPath, FILE_HEADER_BYTES } from '../server/master/oplog/meta-dir';
import { PACKAGE_ROOT } from '../server/common/package-root';
import { IMAGE_FORMAT, ImageLoader, imageHeader } from '../server/master/namespace-image';
import { decodeImageFrame, encodeImage } from '../server/master/image-codec';
import { assertSameSnapshot, snapshot } from './helpers/ns-snapshot';

/** The binary image codec, through real checkpoint files. */
describe('checkpoint image codec', function () {
  this.timeout(60_000);
  let dir: string;

  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chunkfs-image-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function roundTrip(ns: Namespace): Namespace {
    writeCheckpoint(dir, ns, 42, 7);
    const file = checkpointPath(dir, 42);
    assert.equal(verifyCheckpoint(file), true);
    const loaded = readCheckpoint(file);
    assert.equal(loaded.txid, 42);
    assert.equal(loaded.epoch, 7);
    return loaded.ns;
  }

  it('round-trips every kind of entry, over several frames', () => {
    const ns = addXattrs(richNamespace(20_000));
    const loaded = roundTrip(ns);
    assertSameSnapshot(snapshot(loaded), snapshot(ns));
    assertSameTree(loaded, ns);
    assert.ok(frames(checkpointPath(dir, 42)).length > 3, 'entries span several frames');
  });

  it('round-trips chunkserver admin states (decommissioning survives a checkpoint)', () => {
    const ns = richNamespace(10);
    ns.apply({ op: 'setChunkserverState', id: 'cs-a', state: 'decommissioning' });
    ns.apply({ op: 'setChunkserverState', id: 'cs-b', state: 'decommissioned' });
    ns.apply({ op: 'setChunkserverState', id: 'cs-c', state: 'decommissioning' });
    ns.apply({ op: 'setChunkserverState', id: 'cs-c', state: 'normal' });
    const loaded = roundTrip(ns);
    assert.deepEqual(loaded.chunkserverStates.entries(), [['cs-a', 'decommissioning'], ['cs-b', 'decommissioned']]);
    assert.equal(loaded.chunkserverStates.get('cs-c'), 'normal');
    assert.throws(() => ns.apply({ op: 'setChunkserverState', id: 'cs-d', state: 'retired' as 'normal' }), /EINVAL/);
    assert.throws(() => ns.apply({ op: 'setChunkserverState', id: '', state: 'decommissioning' }), /EINVAL/);
    assert.equal(ns.chunkserverStates.get('cs-d'), 'normal');
  });

  it('round-trips a tree more than 10,000 levels deep (no recursion)', () => {
    const ns = new Namespace(5);
    const ino = counter();
    const apply = (m: Mutation) => ns.apply(m);
    apply({ op: 'mkdir', path: '/deep', mode: 0o755, uid: 1, gid: 1, ino: ino(), time: 10.5 });
    apply({ op: 'create', path: '/deep/leaf', mode: 0o644, uid: 1, gid: 1, ino: ino(), time: 11.25 });
    apply({ op: 'link', existing: '/deep/leaf', path: '/top-link', time: 12.75 });
    // Grow the chain at the top, so that every path stays short: /deep becomes /deep/d/d/.../d.
    for (let i = 0; i < 10_001; i++) {
      apply({ op: 'mkdir', path: '/next', mode: 0o700, uid: 2, gid: 2, ino: ino(), time: 100 + i / 8 });
      apply({ op: 'rename', from: '/deep', to: '/next/d', time: 200 + i / 8 });
      apply({ op: 'rename', from: '/next', to: '/deep', time: 300 + i / 8 });
    }
    // ns-snapshot walks recursively and cannot descend this far; the lockstep walk can.
    assertSameTree(roundTrip(ns), ns);
  });

  it('a flipped byte anywhere in an entry frame makes the checkpoint fail verification', () => {
    writeCheckpoint(dir, richNamespace(0), 42, 7);
    const file = checkpointPath(dir, 42);
    const all = frames(file);
    const entryFrames = all.slice(1, -1);
    assert.ok(entryFrames.length > 0);
    const fd = fs.openSync(file, 'r+');
    try {
      for (const f of entryFrames) {
        for (let at = f.offset; at < f.end; at++) {
          flip(fd, at);
          assert.equal(verifyCheckpoint(file), false, `byte ${at} flipped`);
          flip(fd, at);
        }
      }
    } finally {
      fs.closeSync(fd);
    }
    assert.equal(verifyCheckpoint(file), true);
  });

  it("round-trips files' replication factors, recorded or not", () => {
    const ns = richNamespace(0);
    ns.apply({ op: 'create', path: '/r1', mode: 0o644, uid: 0, gid: 0, ino: ns.lastIno + 1, time: 1, replication: 1 });
    ns.apply({ op: 'create', path: '/r32', mode: 0o644, uid: 0, gid: 0, ino: ns.lastIno + 1, time: 1, replication: 32 });
    ns.apply({ op: 'create', path: '/unrecorded', mode: 0o644, uid: 0, gid: 0, ino: ns.lastIno + 1, time: 1 });
    ns.apply({ op: 'setReplication', path: '/b/stays', replication: 2, time: 2 });
    ns.apply({ op: 'setReplication', path: '/a/chunky', replication: 5, time: 2 }); // hard-linked thrice
    const loaded = roundTrip(ns);
    assertSameTree(loaded, ns);
    const factors = (n: Namespace) => ['/r1', '/r32', '/b/stays', '/b/chunky-link', '/unrecorded', '/b/long']
      .map((p) => n.lookupOrNull(p)!.replication);
    assert.deepStrictEqual(factors(loaded), [1, 32, 2, 5, 0, 0]);
  });

  it("one current-format image holds files' replication factors, extended attributes and chunkserver admin states", () => {
    const ns = addXattrs(richNamespace(10));
    ns.apply({ op: 'create', path: '/r4', mode: 0o644, uid: 0, gid: 0, ino: ns.lastIno + 1, time: 1, replication: 4 });
    ns.apply({ op: 'setChunkserverState', id: 'cs-a', state: 'decommissioning' });
    // Special files, one hard-linked from another directory.
    const special: Array<[string, number, number]> = [['fifo', 0o10644, 0], ['sock', 0o140755, 0], ['tty', 0o20620, (4 << 8) | 1], ['disk', 0o60660, 0xfff_ff_fff]];
    for (const [name, mode, rdev] of special) ns.apply({ op: 'mknod', path: `/b/${name}`, mode, rdev, uid: 1, gid: 2, ino: ns.lastIno + 1, time: 3.25 });
    ns.apply({ op: 'link', existing: '/b/tty', path: '/a/tty-too', time: 4 });
    const loaded = roundTrip(ns);
    assert.equal(JSON.parse(frames(checkpointPath(dir, 42))[0].payload.toString()).format, IMAGE_FORMAT);
    assertSameTree(loaded, ns);
    for (const [name, mode, rdev] of special) assert.deepStrictEqual([loaded.getattr(`/b/${name}`).mode, loaded.getattr(`/b/${name}`).rdev], [mode, rdev]);
    assert.equal(loaded.lookupOrNull('/a/tty-too'), loaded.lookupOrNull('/b/tty'));
    assert.equal(loaded.lookupOrNull('/r4')!.replication, 4);
    assert.deepEqual(loaded.chunkserverStates.entries(), [['cs-a', 'decommissioning']]);
  });

  it('reads a format-2 checkpoint (written before per-file factors): its files follow the cluster default', () => {
    // test/fixtures/checkpoint-format2.ckpt: richNamespace(10) written by commit ee84204 (txid 42, epoch 7).
    const fixture = path.join(PACKAGE_ROOT, 'test', 'fixtures', 'checkpoint-format2.ckpt');
    assert.equal(verifyCheckpoint(fixture), true);
    const old = readCheckpoint(fixture);
    assert.deepEqual([old.txid, old.epoch], [42, 7]);
    const expected = richNamespace(10);
    assertSameTree(old.ns, expected);
    for (const { file } of old.ns.regularFiles()) assert.equal(file.replication, 0, 'nothing recorded');
    assert.deepEqual(old.ns.chunkserverStates.entries(), [], 'no admin states before decommissioning');
    old.ns.defaultReplication = 2;
    assert.equal(old.ns.getattr('/a/chunky').replication, 2);
    // Written again, it is the current format, and reads back the same.
    assertSameTree(roundTrip(old.ns), expected);
    assert.equal(JSON.parse(frames(checkpointPath(dir, 42))[0].payload.toString()).format, IMAGE_FORMAT);
  });

  it('refuses extended attributes in an image of a format before them, out of place, or cut short', () => {
    const ns = addXattrs(richNamespace(0));
    const payloads: Buffer[] = [];
    encodeImage(ns, (p) => payloads.push(Buffer.from(p)));
    assert.equal(payloads.length, 1);
    const [payload] = payloads;
    const load = (format: number, bytes: Buffer) => decodeImageFrame(bytes, new ImageLoader({ ...imageHeader(ns), format }));
    load(IMAGE_FORMAT, payload);
    assert.throws(() => load(4, payload), /has kind 6/);
    // The root's entry comes first and the root has attributes: its XATTRS entry follows it.
    const rootEntry = 1 + 8 + 8 + 2 + 4 * 4 + 4 * 8;
    const xattrsEntry = 1 + 8 + 8 + 2 + 4 + (2 + 'user.root'.length) + (4 + 'on the root'.length);
    const misplaced = Buffer.concat([payload.subarray(0, 4), payload.subarray(4 + rootEntry, 4 + rootEntry + xattrsEntry), payload.subarray(4, 4 + rootEntry), payload.subarray(4 + rootEntry + xattrsEntry)]);
    assert.throws(() => load(IMAGE_FORMAT, misplaced), /out of place/);
    for (let cut = 4 + rootEntry + 1; cut < 4 + rootEntry + xattrsEntry; cut++) {
      assert.throws(() => load(IMAGE_FORMAT, payload.subarray(0, cut)), /overruns|out of bounds|Offset/i, `cut at ${cut}`);
    }
  });

  it('rejects an unknown image format or file magic cleanly, naming the file', () => {
    writeCheckpoint(dir, richNamespace(0), 42, 7);
    const file = checkpointPath(dir, 42);
    const buf = fs.readFileSync(file);
    const all = frames(file);
    const meta = JSON.parse(all[0].payload.toString()) as { format: number };
    meta.format = IMAGE_FORMAT + 1;
    fs.writeFileSync(file, Buffer.concat([
      buf.subarray(0, FILE_HEADER_BYTES),
      encodeFrame(42, 0, Buffer.from(JSON.stringify(meta))),
      buf.subarray(all[0].end),
    ]));
    assert.equal(verifyCheckpoint(file), false);
    assert.throws(() => readCheckpoint(file), (err: Error) => err.message.includes(file) && err.message.includes(`unknown image format ${IMAGE_FORMAT + 1}`));

    buf.write('CFSCKP01', 0, 'latin1'); // the JSON format of before
    fs.writeFileSync(file, buf);
    assert.equal(verifyCheckpoint(file), false);
    assert.throws(() => readCheckpoint(file), /not a checkpoint/);
  });
});

// ------------------------------------------------------------------ helpers

function counter(): () => number {
  let ino = 1;
  return () => ++ino;
}

/** Every kind of entry and attribute edge, plus `manyFiles` files in /many. */
function richNamespace(manyFiles: number): Namespace {
  const ns = new Namespace(1_700_000_000_000.125);
  const ino = counter();
  const apply = (m: Mutation) => ns.apply(m);
  const euro = '€'.repeat(85); // 255 bytes of 3-byte characters
  const emoji = `${'😀'.repeat(63)}abc`; // 255 bytes with 4-byte characters
  const t = (i: number) => 1_700_000_000_000 + i + 0.123456789;
  apply({ op: 'mkdir', path: '/a', mode: 0o755, uid: 0, gid: 0, ino: ino(), time: t(1) });
  apply({ op: 'mkdir', path: '/b', mode: 0o755, uid: 5, gid: 6, ino: ino(), time: t(2) });
  apply({ op: 'setattr', path: '/b', mode: 0o2775, time: t(2) + 0.5 });
  apply({ op: 'mkdir', path: `/a/${euro}`, mode: 0o700, uid: 0xfffffffe, gid: 0xfffffffe, ino: ino(), time: t(3) });
  apply({ op: 'mkdir', path: '/empty', mode: 0o1777, uid: 0, gid: 0, ino: ino(), time: t(4) });
  apply({ op: 'create', path: `/a/${euro}/${emoji}`, mode: 0o4755, uid: 7, gid: 8, ino: ino(), time: t(5) });
  apply({ op: 'create', path: '/a/chunky', mode: 0o644, uid: 1, gid: 1, ino: 2 ** 40 + 3, time: t(6) });
  apply({ op: 'setattr', path: '/a/chunky', size: 2 ** 50 + 1, uid: 0xfffffffe, gid: 0xfffffffe, time: t(7) });
  apply({ op: 'setattr', path: '/a/chunky', atimeMs: -1234.5678, mtimeMs: 0.1, time: t(8) + 0.5 });
  const chunky = ns.lookupOrNull('/a/chunky')!;
  for (let i = 0; i < 300; i++) chunky.chunks!.push({ handle: 2 ** 45 + i * 977, version: i % 7 });
  apply({ op: 'symlink', path: '/b/long', target: `/${'€'.repeat(1364)}x`, uid: 3, gid: 3, ino: ino(), time: t(9) });
  apply({ op: 'symlink', path: `/b/${emoji}`, target: '../a/chunky', uid: 3, gid: 3, ino: ino(), time: t(10) });
  // Hard links across directories, to a file and to a symlink; the first link is removed.
  apply({ op: 'link', existing: '/a/chunky', path: '/b/chunky-link', time: t(11) });
  apply({ op: 'link', existing: '/a/chunky', path: `/a/${euro}/chunky-too`, time: t(12) });
  apply({ op: 'link', existing: '/b/long', path: '/long-link', time: t(13) });
  apply({ op: 'create', path: '/b/gone', mode: 0o600, uid: 0, gid: 0, ino: ino(), time: t(14) });
  apply({ op: 'link', existing: '/b/gone', path: '/b/stays', time: t(15) });
  apply({ op: 'unlink', path: '/b/gone', time: t(16) });
  if (manyFiles > 0) apply({ op: 'mkdir', path: '/many', mode: 0o755, uid: 0, gid: 0, ino: ino(), time: t(17) });
  // Reverse order: readdir order is insertion order, not sorted order.
  for (let i = manyFiles - 1; i >= 0; i--) {
    apply({ op: 'create', path: `/many/f${i}`, mode: 0o644, uid: i, gid: i, ino: ino(), time: t(i) / 3 });
  }
  return ns;
}

/**
 * Extended attributes on `ns` from richNamespace: binary, empty and largest values, on every kind
 * of inode; one removed again; on a hard-linked file (written once); a frame's worth in /many.
 */
function addXattrs(ns: Namespace): Namespace {
  const time = 1_700_000_000_016.5;
  const xattr = (path: string, name: string, value: Buffer) => ns.apply({ op: 'setXattr', path, name, value: value.toString('base64'), flags: 0, time });
  xattr('/a/chunky', 'user.bin', Buffer.from([0, 255, 10, 0, 13]));
  xattr('/a/chunky', 'user.empty', Buffer.alloc(0));
  xattr('/a/chunky', `user.${'€'.repeat(83)}`, Buffer.alloc(65536, 7));
  xattr('/b', 'trusted.dir', Buffer.from('on a directory'));
  xattr('/b/long', 'security.link', Buffer.from('on a symlink'));
  xattr('/', 'user.root', Buffer.from('on the root'));
  xattr('/b/stays', 'user.gone', Buffer.from('removed again'));
  ns.apply({ op: 'removeXattr', path: '/b/stays', name: 'user.gone', time });
  for (const [name, node] of ns.lookupOrNull('/many')?.children ?? []) {
    if (node.ino % 3 === 0) xattr(`/many/${name}`, 'user.n', Buffer.alloc(3000, node.ino));
  }
  return ns;
}

/**
 * Walks both trees in lockstep without recursion, comparing names in order, attributes, symlink
 * targets and whole chunk lists, and that hard links share one inode in `actual` as in `expected`.
 */
function assertSameTree(actual: Namespace, expected: Namespace): void {
  assert.equal(actual.inodeCount, expected.inodeCount);
  assert.equal(actual.lastIno, expected.lastIno);
  const twin = new Map<Inode, Inode>();
  const stack: Array<[Inode, Inode, string]> = [[actual.root, expected.root, '/']];
  while (stack.length > 0) {
    const [a, e, where] = stack.pop()!;
    const seen = twin.get(e);
    if (seen) {
      assert.equal(seen, a, `${where}: a hard link that is no longer the same inode`);
      continue;
    }
    twin.set(e, a);
    assert.deepStrictEqual(attrOf(a), attrOf(e), where);
    assert.equal(a.target, e.target, where);
    assert.deepStrictEqual(a.chunks, e.chunks, where);
    assert.deepStrictEqual(a.xattrs, e.xattrs, where);
    assert.deepStrictEqual(a.children && [...a.children.keys()], e.children && [...e.children.keys()], where);
    if (a.children) for (const [name, child] of a.children) stack.push([child, e.children!.get(name)!, name]);
  }
}

function frames(file: string): Frame[] {
  const buf = fs.readFileSync(file);
  const out: Frame[] = [];
  for (let f = decodeFrame(buf, FILE_HEADER_BYTES); f; f = decodeFrame(buf, f.end)) out.push(f);
  assert.equal(out[out.length - 1].end, buf.length);
  return out;
}

function flip(fd: number, at: number): void {
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, at);
  b[0] ^= 0x5a;
  fs.writeSync(fd, b, 0, 1, at);
}
