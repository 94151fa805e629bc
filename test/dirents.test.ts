import { strict as assert } from 'assert';
import { decodeListing, encodeListing, ListingPage } from '../server/common/dir-listing';
import { packDirents } from '../mount/dirents';
import { rawLength, rawName } from '../server/common/raw-names';
import { S_IFDIR, S_IFLNK, S_IFREG, type Attr } from '../server/master/inode';

/** Reads fuse_dirent records back: what the kernel sees of a readdir reply (names as latin1: one character per byte). */
function unpack(buf: Buffer): Array<{ ino: number; next: number; type: number; name: string }> {
  const out = [];
  for (let at = 0; at < buf.length; ) {
    const nameLen = buf.readUInt32LE(at + 16);
    out.push({
      ino: Number(buf.readBigUInt64LE(at)),
      next: Number(buf.readBigUInt64LE(at + 8)),
      type: buf.readUInt32LE(at + 20),
      name: buf.toString('latin1', at + 24, at + 24 + nameLen),
    });
    at += (24 + nameLen + 7) & ~7;
  }
  return out;
}

interface Named {
  name: string;
  attr: { ino: number; mode: number };
}
const attrOf = ({ ino, mode }: Named['attr']): Attr => ({ ino, mode, uid: 0, gid: 0, nlink: 1, size: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0, replication: 0, rdev: 0, hasXattrs: false });
/** The page the master would send of `list` (the mount packs from its bytes), with '.' 7 and '..' 3. */
const page = (list: Named[]): ListingPage => decodeListing(encodeListing(list.map((e) => [e.name, attrOf(e.attr)])));
const dirents = (list: Named[], p = page(list)) => ({ ino: 7, parent: 3, page: p });
const DOTS = 2;

describe('readdir replies (fuse_dirent packing)', function () {
  const modes = [S_IFREG | 0o644, S_IFDIR | 0o755, S_IFLNK | 0o777];
  const listing: Named[] = Array.from({ length: 300 }, (_, i) => ({
    // The last: bytes that are not UTF-8 (server/common/raw-names.ts), one byte each in the
    // record, three in UTF-8 (a 255-byte name fits in a 288-byte reply).
    name: ['f', 'ü'.repeat(i % 128), '名'.repeat(i % 86), 'x'.repeat(i % 256), '\uf7e9'.repeat(i % 256)][i % 5] + i,
    attr: { ino: 2 ** 40 + i * 7919, mode: modes[i % 3] },
  })).filter((e) => rawLength(e.name) <= 255);
  const bytesOf = (name: string) => rawName(name).toString('latin1');

  /** Every record of the listing, read in replies of `size` bytes from offset 0 on. */
  const readAll = (l: ReturnType<typeof dirents>, size: number) => {
    const seen: ReturnType<typeof unpack> = [];
    for (let offset = 0; offset < l.page.length + DOTS; ) {
      const reply = packDirents(l, offset, size);
      assert.ok(reply.length > 0 && reply.length <= size, `reply at ${offset}: ${reply.length} bytes`);
      const records = unpack(reply);
      seen.push(...records);
      offset = records[records.length - 1].next;
    }
    return seen;
  };
  const assertWhole = (seen: ReturnType<typeof unpack>, want: Named[]) => {
    assert.deepStrictEqual(seen.slice(0, DOTS).map((r) => [r.name, r.ino, r.type]), [['.', 7, S_IFDIR >>> 12], ['..', 3, S_IFDIR >>> 12]]);
    const entries = seen.slice(DOTS);
    assert.deepStrictEqual(entries.map((r) => r.name), want.map((e) => bytesOf(e.name)));
    assert.deepStrictEqual(entries.map((r) => r.ino), want.map((e) => e.attr.ino));
    assert.deepStrictEqual(entries.map((r) => r.type), want.map((e) => e.attr.mode >>> 12));
    assert.deepStrictEqual(seen.map((r) => r.next), seen.map((_, i) => i + 1));
  };

  for (const size of [288, 1000, 4096, 131072]) {
    it(`a listing read in replies of ${size} bytes arrives whole, in order, each record once`, () => {
      assertWhole(readAll(dirents(listing), size), listing);
    });
  }

  it('pages joined, and a page with names left out (the mount hides some), pack alike', () => {
    const half = Math.floor(listing.length / 2);
    assertWhole(readAll(dirents(listing, ListingPage.join([page(listing.slice(0, half)), page(listing.slice(half))])), 4096), listing);
    const kept = listing.filter((_, i) => i % 3 !== 0);
    const dropped = new Set(listing.filter((_, i) => i % 3 === 0).map((e) => e.name));
    assertWhole(readAll(dirents(kept, page(listing).without((name) => dropped.has(name))), 1000), kept);
    assertWhole(readAll(dirents([]), 4096), []);
  });

  it('an offset at the end, or a buffer too small for the next record, gives an empty reply', () => {
    assert.equal(packDirents(dirents(listing), listing.length + DOTS, 4096).length, 0);
    assert.equal(packDirents(dirents([{ name: 'x'.repeat(100), attr: { ino: 5, mode: S_IFREG } }]), DOTS, 120).length, 0);
    assert.equal(packDirents(dirents([{ name: 'x'.repeat(100), attr: { ino: 5, mode: S_IFREG } }]), DOTS, 128).length, 128);
    // 85 escaped bytes are 255 bytes of UTF-8 but take 85 in the record: it fits the reply.
    assert.equal(packDirents(dirents([{ name: '\uf7e9'.repeat(85), attr: { ino: 5, mode: S_IFREG } }]), DOTS, 112).length, 112);
  });

  it('a reply packed after a longer one pads with zeros, never bytes of the earlier one', () => {
    packDirents(dirents([{ name: '\xff'.repeat(200), attr: { ino: 9, mode: S_IFREG } }]), DOTS, 4096);
    const short = packDirents(dirents([{ name: 'a', attr: { ino: 5, mode: S_IFREG } }, { name: 'bc', attr: { ino: 6, mode: S_IFDIR } }]), DOTS, 4096);
    assert.equal(short.length, 64);
    assert.deepStrictEqual([...short.subarray(25, 32)], [0, 0, 0, 0, 0, 0, 0]);
    assert.deepStrictEqual([...short.subarray(58, 64)], [0, 0, 0, 0, 0, 0]);
  });

  it("'.' and '..' come first, then the listing, offsets counting them", () => {
    const records = unpack(packDirents(dirents(listing.slice(0, 2)), 0, 4096));
    assert.deepStrictEqual(records.map((r) => [r.name, r.ino, r.type, r.next]), [
      ['.', 7, S_IFDIR >>> 12, 1],
      ['..', 3, S_IFDIR >>> 12, 2],
      [bytesOf(listing[0].name), listing[0].attr.ino, listing[0].attr.mode >>> 12, 3],
      [bytesOf(listing[1].name), listing[1].attr.ino, listing[1].attr.mode >>> 12, 4],
    ]);
  });
});
