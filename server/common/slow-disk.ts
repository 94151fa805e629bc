/** A disk call slower than this (ms) means the disk is busy with other work. */
const SLOW_MS = 5;

/**
 * Whether a process may make its next small disk call on the event loop, blocking it (a log
 * record's write; a chunkserver's small create, small write or version change): not after a
 * call that took longer than SLOW_MS, until
 * one through the thread pool is quick again. A disk busy with other work, or stalled, then
 * blocks the loop once, not call after call, and heartbeats and reads go on meanwhile.
 */
export class SlowDiskGuard {
  private slow = false;

  /** The last call was quick. */
  get quick(): boolean {
    return !this.slow;
  }

  /** Runs the disk call `work`, remembering whether it was slow. */
  async timed<T>(work: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await work();
    } finally {
      this.slow = performance.now() - started > SLOW_MS;
    }
  }
}
