import { strict as assert } from 'assert';
import { DirPrefetch } from '../client/fs/dir-prefetch';

/** When the mount fetches a directory's listing for its attributes (client/fs/dir-prefetch.ts). */
describe('directory listing prefetch', () => {
  let fetched: string[];
  let release: () => void;
  const make = (periodMs = 60_000): DirPrefetch =>
    new DirPrefetch(periodMs, (dir) => {
      fetched.push(dir);
      return new Promise<void>((resolve) => (release = resolve));
    });
  beforeEach(() => {
    fetched = [];
  });

  it('fetches after two misses in a row for existing names in one directory, once while in flight', async () => {
    const p = make();
    p.missed('/d', true);
    assert.deepEqual(fetched, []);
    assert.equal(p.pending('/d'), undefined);
    p.missed('/d', true);
    assert.deepEqual(fetched, ['/d']);
    const pending = p.pending('/d');
    assert.ok(pending, 'stats wait for the listing in flight');
    p.missed('/d', true);
    p.missed('/d', true);
    assert.deepEqual(fetched, ['/d'], 'not again while in flight');
    release();
    await pending;
    await new Promise((r) => setImmediate(r));
    assert.equal(p.pending('/d'), undefined);
  });

  it('never fetches for names that do not exist (creates), nor for misses spread over directories', () => {
    const p = make();
    for (let i = 0; i < 10; i++) p.missed('/d', false);
    for (let i = 0; i < 10; i++) {
      p.missed('/a', true);
      p.missed('/b', true);
    }
    p.missed('/c', true);
    p.missed('/c', false);
    p.missed('/c', true);
    assert.deepEqual(fetched, []);
  });

  it('fetches a directory at most once per period, even when its listing did not answer every stat', async () => {
    const p = make(60_000);
    p.missed('/big', true);
    p.missed('/big', true);
    release();
    await p.pending('/big');
    for (let i = 0; i < 10; i++) p.missed('/big', true);
    assert.deepEqual(fetched, ['/big']);
    const q = make(0);
    q.missed('/d', true);
    q.missed('/d', true);
    release();
    await q.pending('/d');
    await new Promise((r) => setImmediate(r));
    q.missed('/d', true);
    assert.deepEqual(fetched, ['/big', '/d', '/d'], 'a zero period allows the next streak');
  });

  it('a failed fetch is forgotten: the stats go to the master and a later streak may fetch again', async () => {
    const p = new DirPrefetch(0, (dir) => {
      fetched.push(dir);
      return Promise.reject(new Error('master gone'));
    });
    p.missed('/d', true);
    p.missed('/d', true);
    await p.pending('/d'); // resolves: the failure is not the stat's
    await new Promise((r) => setImmediate(r));
    assert.equal(p.pending('/d'), undefined);
    p.missed('/d', true);
    assert.deepEqual(fetched, ['/d', '/d']);
  });
});
