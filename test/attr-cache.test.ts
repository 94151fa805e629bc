import { strict as assert } from 'assert';
import { AttrCache } from '../client/fs/attr-cache';
import { decodeListing, encodeListing, type ListingPage } from '../server/common/dir-listing';
import type { Attr } from '../server/master/inode';

/** The mount's attribute cache (client/fs/attr-cache.ts): what get() answers and what lastKnown() keeps. */
describe('attribute cache', () => {
  const attr = (ino: number, nlink = 1): Attr => ({ ino, mode: 0o100644, uid: 0, gid: 0, nlink, size: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0, replication: 3, rdev: 0, hasXattrs: false });

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

  const page = (entries: Array<[string, Attr]>): ListingPage => decodeListing(encodeListing(entries));

  it('answers from a listing, and whichever came last of a listing and an entry wins', () => {
    const cache = new AttrCache(60_000);
    cache.set('/d/old', attr(9, 5));
    cache.set('/d/gone', attr(10));
    cache.setListing('/d', page([['old', attr(2, 1)], ['x', attr(3)]]));
    assert.deepEqual(cache.get('/d/old'), attr(2, 1), 'the listing is newer than the entry');
    assert.deepEqual(cache.get('/d/x'), attr(3));
    assert.deepEqual(cache.get('/d/gone'), attr(10), 'not listed: the entry stands');
    assert.equal(cache.get('/d/none'), null);
    assert.equal(cache.get('/d'), null, 'a listing says nothing of its directory');
    cache.set('/d/x', attr(3, 4));
    assert.equal(cache.get('/d/x')!.nlink, 4, 'an entry newer than the listing');
    cache.delete('/d/old');
    assert.equal(cache.get('/d/old'), null, 'forgotten, though listed');
    assert.equal(cache.lastKnown('/d/old')!.ino, 2);
    cache.setListing('/', page([['d', attr(1)]]));
    assert.equal(cache.get('/d')!.ino, 1, 'the root listing');
    cache.clear();
    assert.equal(cache.lastKnown('/d/x'), null);
  });

  it('expires listed entries after its lifetime; a lifetime of 0 keeps no listing', async () => {
    const cache = new AttrCache(30);
    cache.setListing('/d', page([['a', attr(2)]]));
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(cache.get('/d/a'), null);
    assert.equal(cache.lastKnown('/d/a')!.ino, 2);
    const off = new AttrCache(0);
    off.setListing('/d', page([['a', attr(2)]]));
    assert.equal(off.lastKnown('/d/a'), null);
  });
});
