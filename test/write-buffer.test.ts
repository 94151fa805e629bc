import { strict as assert } from 'assert';
import { WriteBuffer } from '../client/fs/write-buffer';
import { BufferPool } from '../server/common/buffer-pool';
import { prng } from './helpers/prng';

/** The bytes a file of `size` zeros holds after `writes`, applied in order. */
function applied(size: number, writes: { offset: number; data: Buffer }[]): Buffer {
  const file = Buffer.alloc(size);
  for (const { offset, data } of writes) data.copy(file, offset);
  return file;
}

describe('write buffer (the bytes an open file holds for the chunkservers)', () => {
  it('hands over disjoint runs in offset order, holding what the writes in their order leave', () => {
    const random = prng(7);
    for (let round = 0; round < 200; round++) {
      const buffer = new WriteBuffer(new BufferPool(64));
      const writes: { offset: number; data: Buffer }[] = [];
      for (let i = 0, n = 1 + Math.floor(random() * 30); i < n; i++) {
        const offset = Math.floor(random() * 200);
        const data = Buffer.alloc(1 + Math.floor(random() * 40), 1 + Math.floor(random() * 255));
        writes.push({ offset, data });
        buffer.add(offset, data);
      }
      const { extents: runs, release } = buffer.take();
      for (let i = 1; i < runs.length; i++) {
        assert.ok(runs[i - 1].offset + runs[i - 1].data.length <= runs[i].offset, `runs ${i - 1} and ${i} overlap or are out of order`);
      }
      assert.ok(applied(300, runs).equals(applied(300, writes)), `round ${round}`);
      assert.ok(buffer.empty);
      release();
    }
  });

  it('a file written backwards goes out as one run, as one written forwards does', () => {
    for (const step of [-1024, 1024]) {
      const buffer = new WriteBuffer(new BufferPool(1 << 20));
      const start = step < 0 ? 99 * 1024 : 0;
      for (let i = 0; i < 100; i++) buffer.add(start + i * step, Buffer.alloc(1024, i));
      assert.equal(buffer.extentCount, step < 0 ? 100 : 1);
      const { extents } = buffer.take();
      assert.deepEqual(extents.map((e) => [e.offset, e.data.length]), [[0, 100 * 1024]]);
      assert.equal(extents[0].data[step < 0 ? 100 * 1024 - 1 : 0], 0);
    }
  });

  it('writes forwards that do not fit one slab stay as they are, not copied into one run', () => {
    const buffer = new WriteBuffer(new BufferPool(1000));
    const writes = [1, 2, 3].map((fill) => Buffer.alloc(600, fill));
    writes.forEach((data, i) => buffer.add(i * 600, data));
    const { extents } = buffer.take();
    assert.deepEqual(extents.map((e) => [e.offset, e.data.length, e.data[0]]), [[0, 600, 1], [600, 600, 2], [1200, 600, 3]]);
  });
});
