import { strict as assert } from 'assert';
import { ChunkClientPool } from '../client/chunk-client';

/** Which replica a read goes to first (ChunkClientPool.byReadLoad): the least busy, ties spread by chunk. */
describe('read balancing over replicas', () => {
  const replicas = ['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3'];
  let pool: ChunkClientPool;
  beforeEach(() => {
    pool = new ChunkClientPool(); // clients connect lazily: nothing is dialled here
  });
  afterEach(() => pool.closeAll());

  it('rotates the order by chunk handle when no replica is busier', () => {
    assert.deepEqual(pool.byReadLoad(replicas, 0), replicas);
    assert.deepEqual(pool.byReadLoad(replicas, 1), [replicas[1], replicas[2], replicas[0]]);
    assert.deepEqual(pool.byReadLoad(replicas, 5), [replicas[2], replicas[0], replicas[1]]);
    const firsts = new Set([0, 1, 2, 3, 4, 5].map((h) => pool.byReadLoad(replicas, h)[0]));
    assert.equal(firsts.size, 3, 'different chunks start on different replicas');
  });

  it('puts replicas with reads in progress last, the busiest at the end', () => {
    pool.get(replicas[0]).reading = 2;
    pool.get(replicas[1]).reading = 1;
    assert.deepEqual(pool.byReadLoad(replicas, 0), [replicas[2], replicas[1], replicas[0]]);
    pool.get(replicas[0]).reading = 0;
    assert.deepEqual(pool.byReadLoad(replicas, 1), [replicas[2], replicas[0], replicas[1]]);
  });
});
