import { FsError } from '../common/fs-error';

/** Time as the bucket sees it: injectable so that tests run on a fake clock. */
export interface BucketClock {
  /** ms, monotonic */
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: BucketClock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/**
 * A token bucket over bytes: `take(n)` resolves once n bytes may go at `bytesPerSecond`, with
 * up to `burstBytes` allowed at once after a quiet spell. A take larger than what is in the
 * bucket is not refused or split: the bucket goes into debt and the caller sleeps until the
 * debt is paid, so later callers wait behind it (first come, first served, no timers kept).
 * A rate of 0 means unlimited.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly bytesPerSecond: number,
    private readonly burstBytes: number,
    private readonly clock: BucketClock = realClock,
  ) {
    if (!(bytesPerSecond >= 0 && bytesPerSecond < Infinity)) throw new FsError('EINVAL', `rate must be a number of bytes/s >= 0, not ${bytesPerSecond}`);
    if (!(burstBytes >= 0 && burstBytes < Infinity)) throw new FsError('EINVAL', `burst must be a number of bytes >= 0, not ${burstBytes}`);
    this.tokens = burstBytes;
    this.last = clock.now();
  }

  take(bytes: number): Promise<void> {
    if (this.bytesPerSecond === 0 || bytes <= 0) return Promise.resolve();
    const now = this.clock.now();
    this.tokens = Math.min(this.burstBytes, this.tokens + ((now - this.last) * this.bytesPerSecond) / 1000);
    this.last = now;
    this.tokens -= bytes;
    if (this.tokens >= 0) return Promise.resolve();
    return this.clock.sleep((-this.tokens / this.bytesPerSecond) * 1000);
  }
}
