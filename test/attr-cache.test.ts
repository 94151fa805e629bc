import { strict as assert } from 'assert';
import { AttrCache } from '../client/fs/attr-cache';
import type { Attr } from '../server/master/inode';

/** The mount's attribute cache (client/fs/attr-cache.ts): what get() answers and what lastKnown() keeps. */
describe('attribute cache', () => {
  const attr = (ino: number, nlink = 1): Attr => ({ ino, mode: 0o100644, uid: 0, gid: 0, nlink, size: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0, replication: 3, rdev: 0 });

  it('answers fresh entries; a forgotten one is no answer but its link count stays known until cleared', () => {
    const cache = new AttrCache(60_000);
    cache.set('/a', attr(2, 2));
    assert.deepEqual(cache.get('/a'), attr(2, 2));
    cache.delete('/a');
    assert.equal(cache.get('/a'), null);
    assert.equal(cache.lastKnown('/a')!.nlink, 2);
    cache.set('/a', attr(2, 1));
    assert.equal(cache.get('/a')!.nlink, 1, 'set again: fresh again');
    cache.clear();
    assert.equal(cache.lastKnown('/a'), null);
    assert.equal(cache.lastKnown('/never'), null);
  });

  it('expires entries after its lifetime, and caches nothing with a lifetime of 0', async () => {
    const cache = new AttrCache(30);
    cache.set('/a', attr(2));
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(cache.get('/a'), null);
    assert.equal(cache.lastKnown('/a')!.ino, 2);
    const off = new AttrCache(0);
    off.set('/a', attr(2));
    assert.equal(off.get('/a'), null);
    assert.equal(off.lastKnown('/a'), null);
  });
});
