import { strict as assert } from 'assert';
import { FsError } from '../server/common/fs-error';
import { ChunkserverView } from '../server/master/chunkserver-registry';
import { chooseReplicas } from '../server/master/placement';
import { prng } from './helpers/prng';

const GB = 1024 ** 3;

/** A chunkserver of 100 GB, `used` GB of it in use. */
function cs(id: string, extra: Partial<ChunkserverView> & { used?: number } = {}): ChunkserverView {
  const { used = 10, ...rest } = extra;
  return {
    id, address: `10.0.0.${id.length}:7000`, rack: '', alive: true, chunks: 0,
    capacityBytes: 100 * GB, usedBytes: used * GB, freeBytes: (100 - used) * GB, load: 0, lastHeartbeatMs: 0, state: 'normal', ...rest,
  };
}
const ids = (servers: ChunkserverView[]) => servers.map((s) => s.id).sort();

/** Runs `n` placements with one seeded PRNG and counts how often each server is chosen. */
function tally(n: number, seed: number, place: (random: () => number) => ChunkserverView[]): Map<string, number> {
  const random = prng(seed);
  const counts = new Map<string, number>();
  for (let k = 0; k < n; k++) for (const s of place(random)) counts.set(s.id, (counts.get(s.id) ?? 0) + 1);
  return counts;
}

/** Where new replicas go: alive, distinct, with room, spread across racks, towards emptier servers. */
describe('placement', () => {
  const six = ['a', 'b', 'c', 'd', 'e', 'f'].map((id) => cs(id));

  describe('which servers qualify', () => {
    const cases: Array<{ name: string; servers: ChunkserverView[]; want: number; opts?: { exclude?: Set<string>; minFreeBytes?: number }; expect: string[] }> = [
      { name: 'skips dead servers', servers: [cs('a', { alive: false }), cs('b'), cs('c')], want: 3, expect: ['b', 'c'] },
      { name: 'skips decommissioning and decommissioned servers', servers: [cs('a', { state: 'decommissioning' }), cs('b'), cs('c', { state: 'decommissioned' })], want: 3, expect: ['b'] },
      { name: 'skips excluded holders', servers: six, want: 6, opts: { exclude: new Set(['a', 'c']) }, expect: ['b', 'd', 'e', 'f'] },
      { name: 'skips servers below minFreeBytes', servers: [cs('a', { used: 99.99 }), cs('b', { used: 50 }), cs('c', { used: 100 })], want: 3, opts: { minFreeBytes: 64 * 1024 ** 2 }, expect: ['b'] },
      { name: 'takes a server with exactly minFreeBytes', servers: [cs('a', { freeBytes: 1000 })], want: 1, opts: { minFreeBytes: 1000 }, expect: ['a'] },
      { name: 'returns all qualifying when fewer than wanted', servers: [cs('a'), cs('b')], want: 3, expect: ['a', 'b'] },
      { name: 'counts a server listed twice once', servers: [cs('a'), cs('a'), cs('b')], want: 3, expect: ['a', 'b'] },
      { name: 'returns [] when none qualifies', servers: [cs('a', { alive: false }), cs('b', { used: 100 }), cs('c')], want: 3, opts: { exclude: new Set(['c']), minFreeBytes: 1 }, expect: [] },
      { name: 'returns [] with no servers at all', servers: [], want: 3, expect: [] },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const random = prng(7);
        for (let k = 0; k < 200; k++) assert.deepEqual(ids(chooseReplicas(c.servers, c.want, { ...c.opts, random })), c.expect);
      });
    }
  });

  it('never returns the same server twice and never more than wanted', () => {
    const random = prng(1);
    for (let k = 0; k < 1000; k++) {
      const want = 1 + (k % 5);
      const got = chooseReplicas(six, want, { random });
      assert.equal(got.length, want);
      assert.equal(new Set(ids(got)).size, want);
    }
  });

  for (const want of [0, 1.5, -1, NaN, Infinity]) {
    it(`rejects want = ${want} with EINVAL`, () => {
      assert.throws(() => chooseReplicas(six, want, { random: prng(1) }), (e: unknown) => e instanceof FsError && e.code === 'EINVAL');
    });
  }

  describe('racks', () => {
    // Rack A is emptier, so utilisation alone would put all three replicas there.
    const twoRacks = [
      cs('a1', { rack: 'A', used: 5 }), cs('a2', { rack: 'A', used: 5 }), cs('a3', { rack: 'A', used: 5 }),
      cs('b1', { rack: 'B', used: 60 }), cs('b2', { rack: 'B', used: 60 }), cs('b3', { rack: 'B', used: 60 }),
    ];
    const rackOf = (s: ChunkserverView) => s.rack;

    it('uses both racks for 3 replicas on 2 racks x 3 servers, every time over 1,000 draws', () => {
      const random = prng(42);
      for (let k = 0; k < 1000; k++) {
        const got = chooseReplicas(twoRacks, 3, { random });
        assert.equal(got.length, 3);
        assert.deepEqual(new Set(got.map(rackOf)), new Set(['A', 'B']), `draw ${k}: ${ids(got)}`);
      }
    });

    it('spreads 3 replicas over 3 racks when there are 3', () => {
      const three = [...twoRacks, cs('c1', { rack: 'C', used: 90 })];
      const random = prng(3);
      for (let k = 0; k < 1000; k++) assert.equal(new Set(chooseReplicas(three, 3, { random }).map(rackOf)).size, 3);
    });

    const reReplication: Array<{ name: string; servers: ChunkserverView[]; holders: string[]; expectRack: string }> = [
      { name: 'holders in rack A -> the new replica goes to rack B', servers: twoRacks, holders: ['a1', 'a2'], expectRack: 'B' },
      { name: 'a dead holder still counts for its rack', servers: twoRacks.map((s) => (s.id === 'a1' ? { ...s, alive: false } : s)), holders: ['a1'], expectRack: 'B' },
      { name: 'rack B unusable -> rack A after all', servers: twoRacks.map((s) => (s.rack === 'B' ? { ...s, alive: false } : s)), holders: ['a1'], expectRack: 'A' },
      { name: "rack '' is one default rack", servers: [cs('d1'), cs('d2'), cs('d3'), cs('r1', { rack: 'R', used: 95 })], holders: ['d1'], expectRack: 'R' },
    ];
    for (const c of reReplication) {
      it(`counts the holders' racks as used: ${c.name}`, () => {
        const random = prng(9);
        for (let k = 0; k < 1000; k++) {
          const got = chooseReplicas(c.servers, 1, { exclude: new Set(c.holders), random });
          assert.equal(got.length, 1);
          assert.equal(got[0].rack, c.expectRack);
        }
      });
    }
  });

  describe('utilisation and load', () => {
    const mixed = [cs('empty', { used: 2 }), cs('mid1', { used: 50 }), cs('mid2', { used: 50 }), cs('full', { used: 97 })];

    it('chooses a nearly-empty server clearly more often than a nearly-full one', () => {
      const counts = tally(10_000, 11, (random) => chooseReplicas(mixed, 1, { random }));
      const empty = counts.get('empty') ?? 0;
      const full = counts.get('full') ?? 0;
      assert.ok(empty > 3 * full + 1000, `empty ${empty}, full ${full}`);
      assert.ok((counts.get('mid1') ?? 0) > 0 && (counts.get('mid2') ?? 0) > 0, 'not always the single best server');
    });

    it('still chooses the nearly-full server when it is needed', () => {
      const counts = tally(10_000, 12, (random) => chooseReplicas(mixed, 4, { random }));
      assert.equal(counts.get('full'), 10_000);
    });

    it('prefers a quiet server to a busy one of equal utilisation', () => {
      const servers = [cs('quiet', { load: 0 }), cs('busy', { load: 40 }), cs('other', { load: 4 })];
      const counts = tally(10_000, 13, (random) => chooseReplicas(servers, 1, { random }));
      assert.ok((counts.get('quiet') ?? 0) > 3 * (counts.get('busy') ?? 0), JSON.stringify([...counts]));
    });

    const bursts: Array<{ name: string; servers: ChunkserverView[] }> = [
      { name: '6 equal servers', servers: six },
      { name: '6 nearly equal servers', servers: six.map((s, k) => cs(s.id, { used: 40 + k * 0.3 })) },
    ];
    for (const b of bursts) {
      it(`spreads a burst of 300 placements on ${b.name} roughly evenly`, () => {
        for (const want of [1, 3]) {
          const counts = tally(300, 21 + want, (random) => chooseReplicas(b.servers, want, { random }));
          const fair = (300 * want) / b.servers.length;
          for (const s of b.servers) {
            const got = counts.get(s.id) ?? 0;
            assert.ok(got <= 2 * fair && got >= fair / 2, `want ${want}: ${s.id} got ${got}, fair share ${fair}`);
          }
        }
      });
    }
  });

  it('is deterministic given the same random sequence', () => {
    const run = () => tally(500, 5, (random) => chooseReplicas(six, 3, { random }));
    assert.deepEqual([...run()], [...run()]);
  });
});
