import { performance } from 'perf_hooks';
import { FsError } from '../server/common/fs-error';

/**
 * Requests to a chunkserver out this long (ms) have it pinged, and again this long after each
 * answer. Two pings in a row unanswered in PING_DEADLINE_MS each fail them: a stopped
 * chunkserver keeps its connections open, so otherwise only each request's whole deadline,
 * 10 s per replica of a write's chain (30 s for a primary of three), tells.
 */
const PING_AFTER_MS = 2_000;
const PING_DEADLINE_MS = 3_000;
/**
 * After pings found a chunkserver silent, further calls to it fail at once for this long (ms).
 * Otherwise every call queued for it costs its own whole deadline: a stopped secondary held a
 * chunk's turn on the primary for one write, then for the next write queued behind it, then the
 * master's version change behind both timed out too, and a `cp` stalled for 40 s.
 */
const UNRESPONSIVE_MS = 10_000;
/** A ping's timeout handled this much past its deadline (ms) found this process paused, not the peer. */
const LATE_MS = 1_000;

interface Watcher {
  silent: (err: FsError) => void;
  endsAt: number;
}

/**
 * Whether one chunkserver still answers, for the requests out to it: one ping loop however many
 * requests wait (see PING_AFTER_MS), whose finding of silence fails them all, and for a while
 * every call after them. A ping timeout is not counted when its handling ran late: this process
 * itself was paused (a stopped chunkserver forwarding a write, a starved master), and every
 * deadline expires at once when it resumes; the peer is not blamed for that.
 */
export class PingWatch {
  private readonly watchers = new Set<Watcher>();
  private pinging = false;
  private unresponsiveUntil = 0;

  constructor(
    /** "replica HOST:PORT", as errors name it (see failedReplica). */
    private readonly peer: string,
    /** One ping with the given deadline (ms); rejects with an FsError. */
    private readonly ping: (deadlineMs: number) => Promise<unknown>,
  ) {}

  /** Throws at once while pings found the chunkserver silent lately (see UNRESPONSIVE_MS). */
  checkResponsive(): void {
    const left = this.unresponsiveUntil - performance.now();
    if (left > 0) throw new FsError('ETIMEDOUT', `${this.peer} did not answer pings lately (tried again in ${Math.ceil(left / 1000)} s)`);
  }

  /**
   * Watches over a request of at most `deadlineMs`: `silent` is called with an ETIMEDOUT naming
   * the replica if pings find it silent meanwhile. Returns the stop, for when the request ends.
   */
  watch(deadlineMs: number, silent: (err: FsError) => void): () => void {
    const watcher = { silent, endsAt: performance.now() + deadlineMs };
    this.watchers.add(watcher);
    if (!this.pinging) this.later();
    return () => this.watchers.delete(watcher);
  }

  private later(): void {
    this.pinging = true;
    setTimeout(() => this.round(false), PING_AFTER_MS).unref();
  }

  /** One ping, if a request still waits; `again`: the one before it went unanswered. */
  private round(again: boolean): void {
    for (const w of this.watchers) if (performance.now() >= w.endsAt) this.watchers.delete(w);
    if (this.watchers.size === 0) {
      this.pinging = false;
      return;
    }
    const sentAt = performance.now();
    this.ping(PING_DEADLINE_MS).then(
      () => this.later(),
      (err: FsError) => {
        const late = performance.now() - sentAt > PING_DEADLINE_MS + LATE_MS;
        if (err.code !== 'ETIMEDOUT' || late) return this.later(); // gone (requests fail by themselves), or we were paused
        if (!again) return this.round(true);
        this.unresponsiveUntil = performance.now() + UNRESPONSIVE_MS;
        const silence = new FsError('ETIMEDOUT', `${this.peer} did not answer two pings of ${PING_DEADLINE_MS} ms`);
        const waiting = [...this.watchers];
        this.watchers.clear();
        this.pinging = false;
        for (const w of waiting) w.silent(silence);
      },
    );
  }
}
