import { strict as assert } from 'assert';
import { decodeListing, encodeListing, ListingPage } from '../server/common/dir-listing';
import { FsError } from '../server/common/fs-error';
import type { DirEntry } from '../server/master/namespace';

const pairs = (entries: DirEntry[]) => entries.map((e) => [e.name, e.attr] as const);

/** The packed listing a readdir page travels in (ReadDirResponse.entries). */
describe('directory listing codec', function () {
  const entries: DirEntry[] = [
    { name: 'a', attr: { ino: 2, mode: 0o40755, uid: 0, gid: 0, nlink: 2, size: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0, replication: 0, rdev: 0, hasXattrs: false } },
    {
      name: 'ünïcödé 名前',
      attr: { ino: 2 ** 53 - 1, mode: 0o100644, uid: 0xfffffffe, gid: 65534, nlink: 0xffffffff, size: 2 ** 53 - 2, atimeMs: 1.7e12 + 0.123, mtimeMs: -1.5, ctimeMs: 2 ** 45, replication: 10, rdev: 0, hasXattrs: true },
    },
    { name: 'x'.repeat(255), attr: { ino: 7, mode: 0o120777, uid: 1000, gid: 1000, nlink: 1, size: 5, atimeMs: 1, mtimeMs: 2, ctimeMs: 3, replication: 0, rdev: 0, hasXattrs: false } },
    { name: 'tty', attr: { ino: 8, mode: 0o20620, uid: 0, gid: 5, nlink: 1, size: 0, atimeMs: 1, mtimeMs: 2, ctimeMs: 3, replication: 0, rdev: 0xfff_ff_fff, hasXattrs: false } },
  ];

  it('round-trips names (UTF-8, 255 bytes) and every attribute exactly', () => {
    assert.deepStrictEqual(decodeListing(encodeListing(pairs(entries))).entries(), entries);
    assert.deepStrictEqual(decodeListing(encodeListing([])).entries(), []);
  });

  it('decodes a page that sits inside a larger buffer', () => {
    const page = encodeListing(pairs(entries));
    const framed = Buffer.concat([Buffer.from('head'), page, Buffer.from('tail')]);
    assert.deepStrictEqual(decodeListing(framed.subarray(4, 4 + page.length)).entries(), entries);
  });

  it('refuses a page cut anywhere, overrun or not a page with EIO', () => {
    const page = encodeListing(pairs(entries));
    const eio = (e: unknown) => e instanceof FsError && e.code === 'EIO';
    assert.deepStrictEqual(decodeListing(page.subarray(0, 0)).entries(), []); // what an empty bytes field decodes to
    for (let cut = 1; cut < page.length; cut++) assert.throws(() => decodeListing(page.subarray(0, cut)), eio, `cut at ${cut}`);
    assert.throws(() => decodeListing(Buffer.concat([page, Buffer.from('x')])), eio, 'a byte too many');
    assert.throws(() => decodeListing(Buffer.concat([page, Buffer.from('y\0')])), eio, 'a name too many');
    const foreign = Buffer.from(page);
    foreign.writeUInt32LE(0, 0);
    assert.throws(() => decodeListing(foreign), eio, 'no magic number');
  });

  it('round-trips a large page', () => {
    const many: DirEntry[] = Array.from({ length: 3000 }, (_, i) => ({
      name: `f${i}`,
      attr: { ino: 100 + i, mode: 0o100644, uid: i, gid: 2 * i, nlink: 1, size: i * 4096, atimeMs: 1.7e12 + i / 1000, mtimeMs: 1.7e12 + i, ctimeMs: 1.7e12 - i, replication: 3, rdev: 0, hasXattrs: i % 7 === 0 },
    }));
    assert.deepStrictEqual(decodeListing(encodeListing(pairs(many))).entries(), many);
  });

  it('joins pages and drops entries with their attributes', () => {
    const [a, b] = [entries.slice(0, 1), entries.slice(1)].map((part) => decodeListing(encodeListing(pairs(part))));
    const joined = ListingPage.join([a, b]);
    assert.deepStrictEqual(joined.entries(), entries);
    assert.deepStrictEqual([joined.ino(3), joined.mode(3), joined.name(3)], [8, 0o20620, 'tty']);
    assert.deepStrictEqual(joined.without((name) => name.startsWith('x') || name === 'a').entries(), [entries[1], entries[3]]);
    assert.equal(joined.without(() => false), joined);
  });
});
