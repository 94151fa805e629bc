import { strict as assert } from 'assert';
import { decodeListing, encodeListing } from '../server/common/dir-listing';
import { FsError } from '../server/common/fs-error';
import type { DirEntry } from '../server/master/namespace';

/** The packed listing a readdir page travels in (ReadDirResponse.entries). */
describe('directory listing codec', function () {
  const entries: DirEntry[] = [
    { name: 'a', attr: { ino: 2, mode: 0o40755, uid: 0, gid: 0, nlink: 2, size: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0, replication: 0, rdev: 0 } },
    {
      name: 'ünïcödé 名前',
      attr: { ino: 2 ** 53 - 1, mode: 0o100644, uid: 0xfffffffe, gid: 65534, nlink: 0xffffffff, size: 2 ** 53 - 2, atimeMs: 1.7e12 + 0.123, mtimeMs: -1.5, ctimeMs: 2 ** 45, replication: 10, rdev: 0 },
    },
    { name: 'x'.repeat(255), attr: { ino: 7, mode: 0o120777, uid: 1000, gid: 1000, nlink: 1, size: 5, atimeMs: 1, mtimeMs: 2, ctimeMs: 3, replication: 0, rdev: 0 } },
    { name: 'tty', attr: { ino: 8, mode: 0o20620, uid: 0, gid: 5, nlink: 1, size: 0, atimeMs: 1, mtimeMs: 2, ctimeMs: 3, replication: 0, rdev: 0xfff_ff_fff } },
  ];

  it('round-trips names (UTF-8, 255 bytes) and every attribute exactly', () => {
    assert.deepStrictEqual(decodeListing(encodeListing(entries)), entries);
    assert.deepStrictEqual(decodeListing(encodeListing([])), []);
  });

  it('decodes a page that sits inside a larger buffer', () => {
    const page = encodeListing(entries);
    const framed = Buffer.concat([Buffer.from('head'), page, Buffer.from('tail')]);
    assert.deepStrictEqual(decodeListing(framed.subarray(4, 4 + page.length)), entries);
  });

  it('refuses a page cut anywhere inside an entry with EIO', () => {
    const page = encodeListing(entries);
    const ends = new Set<number>();
    for (let n = 1; n <= entries.length; n++) ends.add(encodeListing(entries.slice(0, n)).length);
    for (let cut = 1; cut < page.length; cut++) {
      if (ends.has(cut)) {
        assert.equal(decodeListing(page.subarray(0, cut)).length, [...ends].filter((e) => e <= cut).length);
        continue;
      }
      assert.throws(() => decodeListing(page.subarray(0, cut)), (e: unknown) => e instanceof FsError && e.code === 'EIO', `cut at ${cut}`);
    }
  });
});
