import { strict as assert } from 'assert';
import { BucketClock, TokenBucket } from '../server/chunkserver/token-bucket';
import { codeOf } from './helpers/errno';

/** A clock that only moves when someone sleeps on it (or the test advances it). */
class FakeClock implements BucketClock {
  t = 1000;
  readonly slept: number[] = [];
  now(): number {
    return this.t;
  }
  sleep(ms: number): Promise<void> {
    this.slept.push(ms);
    return Promise.resolve();
  }
}

/** The bandwidth cap of re-replication copies, on a fake clock: exact waits, no timing. */
describe('token bucket', () => {
  let clock: FakeClock;
  beforeEach(() => (clock = new FakeClock()));

  it('lets a full bucket go at once, then makes a caller wait for exactly its debt', async () => {
    const b = new TokenBucket(1000, 500, clock);
    await b.take(500);
    assert.deepEqual(clock.slept, []);
    await b.take(1000); // nothing left: 1000 bytes at 1000 B/s
    assert.deepEqual(clock.slept, [1000]);
    clock.t += 1000; // the debt is paid after that second
    await b.take(250);
    assert.deepEqual(clock.slept, [1000, 250]);
  });

  it('never stores more than the burst, however long it was idle', async () => {
    const b = new TokenBucket(1000, 500, clock);
    clock.t += 3_600_000;
    await b.take(500);
    await b.take(100);
    assert.deepEqual(clock.slept, [100]);
  });

  it('queues callers that take at the same moment behind each other', async () => {
    const b = new TokenBucket(1000, 0, clock);
    await Promise.all([b.take(1000), b.take(1000), b.take(500)]);
    assert.deepEqual(clock.slept, [1000, 2000, 2500]);
  });

  it('over any run of takes, waits exactly (bytes - burst) / rate in all when nobody else takes', async () => {
    const b = new TokenBucket(4e6, 1e6, clock);
    let bytes = 0;
    for (let i = 1; i <= 50; i++) {
      const n = (i * 7919) % 3_000_000;
      bytes += n;
      const before = clock.slept.length;
      await b.take(n);
      if (clock.slept.length > before) clock.t += clock.slept[clock.slept.length - 1]; // the caller slept that long
    }
    const total = clock.slept.reduce((a, c) => a + c, 0);
    assert.ok(Math.abs(total - ((bytes - 1e6) / 4e6) * 1000) < 1e-6, `${total} ms for ${bytes} bytes`);
  });

  it('does not limit at rate 0, and refuses a negative or infinite rate or burst', async () => {
    const b = new TokenBucket(0, 0, clock);
    for (let i = 0; i < 10; i++) await b.take(1e9);
    assert.deepEqual(clock.slept, []);
    for (const [rate, burst] of [[-1, 0], [Infinity, 0], [NaN, 0], [1, -1], [1, Infinity]]) {
      assert.equal(codeOf(() => new TokenBucket(rate, burst, clock)), 'EINVAL', `rate ${rate}, burst ${burst}`);
    }
  });
});
