import { strict as assert } from 'assert';
import { packDirents, WithDots, type Dirents } from '../mount/dirents';
import { rawLength, rawName } from '../server/common/raw-names';
import { S_IFDIR, S_IFLNK, S_IFREG } from '../server/master/inode';

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
const dirents = (list: Named[]): Dirents => ({
  length: list.length,
  name: (i) => list[i].name,
  ino: (i) => list[i].attr.ino,
  mode: (i) => list[i].attr.mode,
});

describe('readdir replies (fuse_dirent packing)', function () {
  const modes = [S_IFREG | 0o644, S_IFDIR | 0o755, S_IFLNK | 0o777];
  const listing: Named[] = Array.from({ length: 300 }, (_, i) => ({
    // The last: bytes that are not UTF-8 (server/common/raw-names.ts), one byte each in the
    // record, three in UTF-8 (a 255-byte name fits in a 288-byte reply).
    name: ['f', 'ü'.repeat(i % 128), '名'.repeat(i % 86), 'x'.repeat(i % 256), '\uf7e9'.repeat(i % 256)][i % 5] + i,
    attr: { ino: 2 ** 40 + i * 7919, mode: modes[i % 3] },
  })).filter((e) => rawLength(e.name) <= 255);
  const bytesOf = (name: string) => rawName(name).toString('latin1');

  for (const size of [288, 1000, 4096, 131072]) {
    it(`a listing read in replies of ${size} bytes arrives whole, in order, each record once`, () => {
      const seen: ReturnType<typeof unpack> = [];
      for (let offset = 0; offset < listing.length; ) {
        const reply = packDirents(dirents(listing), offset, size);
        assert.ok(reply.length > 0 && reply.length <= size, `reply at ${offset}: ${reply.length} bytes`);
        const records = unpack(reply);
        seen.push(...records);
        offset = records[records.length - 1].next;
      }
      assert.deepStrictEqual(seen.map((r) => r.name), listing.map((e) => bytesOf(e.name)));
      assert.deepStrictEqual(seen.map((r) => r.ino), listing.map((e) => e.attr.ino));
      assert.deepStrictEqual(seen.map((r) => r.type), listing.map((e) => e.attr.mode >>> 12));
      assert.deepStrictEqual(seen.map((r) => r.next), listing.map((_, i) => i + 1));
    });
  }

  it('an offset at the end, or a buffer too small for the next record, gives an empty reply', () => {
    assert.equal(packDirents(dirents(listing), listing.length, 4096).length, 0);
    assert.equal(packDirents(dirents([{ name: 'x'.repeat(100), attr: { ino: 5, mode: S_IFREG } }]), 0, 120).length, 0);
    assert.equal(packDirents(dirents([{ name: 'x'.repeat(100), attr: { ino: 5, mode: S_IFREG } }]), 0, 128).length, 128);
  });

  it('a reply packed after a longer one pads with zeros, never bytes of the earlier one', () => {
    packDirents(dirents([{ name: '\xff'.repeat(200), attr: { ino: 9, mode: S_IFREG } }]), 0, 4096);
    const short = packDirents(dirents([{ name: 'a', attr: { ino: 5, mode: S_IFREG } }, { name: 'bc', attr: { ino: 6, mode: S_IFDIR } }]), 0, 4096);
    assert.equal(short.length, 64);
    assert.deepStrictEqual([...short.subarray(25, 32)], [0, 0, 0, 0, 0, 0, 0]);
    assert.deepStrictEqual([...short.subarray(58, 64)], [0, 0, 0, 0, 0, 0]);
  });

  it("'.' and '..' come first, then the listing, offsets counting them", () => {
    const records = unpack(packDirents(new WithDots(7, 3, dirents(listing.slice(0, 2))), 0, 4096));
    assert.deepStrictEqual(records.map((r) => [r.name, r.ino, r.type, r.next]), [
      ['.', 7, S_IFDIR >>> 12, 1],
      ['..', 3, S_IFDIR >>> 12, 2],
      [bytesOf(listing[0].name), listing[0].attr.ino, listing[0].attr.mode >>> 12, 3],
      [bytesOf(listing[1].name), listing[1].attr.ino, listing[1].attr.mode >>> 12, 4],
    ]);
  });
});
