import type { Socket } from 'net';
import { FsError } from './fs-error';

/** Bytes buffered before the socket is paused (TCP then holds the sender back). */
const HIGH_WATER_BYTES = 1024 * 1024;

/**
 * Pull-style reading of a TCP socket for a framed protocol: exact-size reads for headers, and
 * whatever has arrived (up to a limit, without copying) for bulk data. Reading stops while
 * more than HIGH_WATER_BYTES wait unread, so a consumer that is not ready (waiting for its
 * chunk's turn, say) holds the sender back through TCP instead of buffering without bound.
 */
export class SocketReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(
    private readonly socket: Socket,
    /** Names the peer in errors, e.g. "replica 127.0.0.1:4000". */
    private readonly peer: string,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered > HIGH_WATER_BYTES) socket.pause();
      this.notify();
    });
    socket.on('end', () => this.finish(null));
    socket.on('error', (err) => this.finish(err));
    socket.on('close', () => this.finish(null));
  }

  /** Whatever has arrived, at most `max` bytes (at least one); throws if the stream ends first. */
  async readSome(max: number): Promise<Buffer> {
    await this.waitFor(1, false);
    const first = this.chunks[0];
    const piece = first.length <= max ? first : first.subarray(0, max);
    if (piece === first) this.chunks.shift();
    else this.chunks[0] = first.subarray(max);
    this.consumed(piece.length);
    return piece;
  }

  /**
   * Exactly `n` bytes, or null when `eofOk` and the stream ended cleanly before any of them
   * (the peer closed between requests). Ending in the middle throws.
   */
  async readExactly(n: number, eofOk = false): Promise<Buffer | null> {
    if (!(await this.waitFor(n, eofOk))) return null;
    const out = Buffer.allocUnsafe(n);
    for (let got = 0; got < n; ) {
      const part = await this.readSome(n - got);
      part.copy(out, got);
      got += part.length;
    }
    return out;
  }

  /** Reads and drops `n` bytes (the rest of a refused request's data). */
  async skip(n: number): Promise<void> {
    for (let left = n; left > 0; ) left -= (await this.readSome(left)).length;
  }

  /** Resolves true once `n` bytes are buffered; false for a clean end before any if `eofOk`. */
  private async waitFor(n: number, eofOk: boolean): Promise<boolean> {
    while (this.buffered < n) {
      if (this.failure) throw this.failure;
      if (this.ended) {
        if (eofOk && this.buffered === 0) return false;
        throw new FsError('EIO', `${this.peer} closed the connection in the middle of a message`);
      }
      // Fewer than n bytes buffered is below the high-water mark: make sure data flows.
      this.socket.resume();
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    return true;
  }

  private consumed(bytes: number): void {
    this.buffered -= bytes;
    if (this.buffered <= HIGH_WATER_BYTES) this.socket.resume();
  }

  private finish(err: Error | null): void {
    if (err && !this.failure) this.failure = new FsError('EIO', `${this.peer} connection failed: ${err.message}`);
    this.ended = true;
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}
