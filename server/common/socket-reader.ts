import * as net from 'net';
import { performance } from 'perf_hooks';
import { FsError } from './fs-error';

/** Bytes buffered before the socket is paused (TCP then holds the sender back). */
const HIGH_WATER_BYTES = 1024 * 1024;
/** The one buffer a connected socket reads into (see connectWithReader). */
const READ_BUFFER_BYTES = 256 * 1024;

/** A destination being filled straight from the socket (readInto). */
interface Target {
  dest: Buffer;
  filled: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Pull-style reading of a TCP socket for a framed protocol: exact-size reads for headers, bulk
 * data either as whatever has arrived (readSome, without copying) or straight into the
 * caller's buffer (readInto). Reading stops while more than HIGH_WATER_BYTES wait unread, so a
 * consumer that is not ready (waiting for its chunk's turn, say) holds the sender back through
 * TCP instead of buffering without bound.
 *
 * Bytes arrive through feed(): from 'data' events (fresh buffers, kept as they are) or from a
 * socket's `onread` buffer (connectWithReader), which the socket reuses, so bytes not taken at
 * once are copied. The latter costs no allocation per socket read: at a few hundred MB/s, a
 * fresh 64 KiB buffer per read made the garbage collector run a full collection every few
 * dozen MiB and take a quarter of a reader's CPU.
 */
export class SocketReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  private target: Target | null = null;
  /** When bytes last arrived (performance.now()). */
  private lastFedAt = performance.now();

  constructor(
    private readonly socket: net.Socket,
    /** Names the peer in errors, e.g. "replica 127.0.0.1:4000". */
    private readonly peer: string,
    /** The socket was made with `onread` feeding this reader: no 'data' events to listen to. */
    fedByOnread = false,
  ) {
    if (!fedByOnread) socket.on('data', (chunk: Buffer) => this.feed(chunk, false));
    socket.on('end', () => this.finish(null));
    socket.on('error', (err) => this.finish(err));
    socket.on('close', () => this.finish(null));
  }

  /**
   * Bytes from the socket; `transient`: the buffer is reused once this returns. Returns false
   * when the socket should pause (too much is buffered).
   */
  feed(chunk: Buffer, transient: boolean): boolean {
    this.lastFedAt = performance.now();
    let rest = chunk;
    const target = this.target;
    if (target && this.buffered === 0) {
      const n = rest.copy(target.dest, target.filled);
      target.filled += n;
      rest = rest.subarray(n);
      if (target.filled === target.dest.length) {
        this.target = null;
        target.resolve();
      }
    }
    if (rest.length > 0) {
      this.chunks.push(transient ? Buffer.from(rest) : rest);
      this.buffered += rest.length;
    }
    this.notify();
    if (this.buffered <= HIGH_WATER_BYTES) return true;
    this.socket.pause();
    return false;
  }

  /** Whatever has arrived, at most `max` bytes (at least one); throws if the stream ends first. */
  async readSome(max: number): Promise<Buffer> {
    await this.waitFor(1, false);
    return this.take(max);
  }

  /** Fills `dest` from the stream; throws if the stream ends first. */
  async readInto(dest: Buffer): Promise<void> {
    let filled = 0;
    while (filled < dest.length && this.buffered > 0) filled += this.take(dest.length - filled).copy(dest, filled);
    if (filled === dest.length) return;
    this.checkOpen();
    await new Promise<void>((resolve, reject) => {
      this.target = { dest, filled, resolve, reject };
      this.socket.resume();
    });
  }

  /**
   * Exactly `n` bytes, or null when `eofOk` and the stream ended cleanly before any of them
   * (the peer closed between requests). Ending in the middle throws.
   */
  async readExactly(n: number, eofOk = false): Promise<Buffer | null> {
    if (eofOk && !(await this.waitFor(1, true))) return null;
    const out = Buffer.allocUnsafe(n);
    await this.readInto(out);
    return out;
  }

  /** Milliseconds since bytes last arrived. */
  idleMs(): number {
    return performance.now() - this.lastFedAt;
  }

  /** Closes the connection: reads waiting and to come fail with `reason`. */
  destroy(reason: Error): void {
    this.finish(reason);
    this.socket.destroy();
  }

  /** Reads and drops `n` bytes (the rest of a refused request's data). */
  async skip(n: number): Promise<void> {
    for (let left = n; left > 0; ) left -= (await this.readSome(left)).length;
  }

  /** Up to `max` buffered bytes (some must be buffered), without copying. */
  private take(max: number): Buffer {
    const first = this.chunks[0];
    const piece = first.length <= max ? first : first.subarray(0, max);
    if (piece === first) this.chunks.shift();
    else this.chunks[0] = first.subarray(max);
    this.buffered -= piece.length;
    if (this.buffered <= HIGH_WATER_BYTES) this.socket.resume();
    return piece;
  }

  /** Resolves true once `n` bytes are buffered; false for a clean end before any if `eofOk`. */
  private async waitFor(n: number, eofOk: boolean): Promise<boolean> {
    while (this.buffered < n) {
      if (eofOk && this.ended && !this.failure && this.buffered === 0) return false;
      this.checkOpen();
      // Fewer than n bytes buffered is below the high-water mark: make sure data flows.
      this.socket.resume();
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    return true;
  }

  /** Throws if no more bytes can come. */
  private checkOpen(): void {
    if (this.failure) throw this.failure;
    if (this.ended) throw this.truncated();
  }

  private truncated(): FsError {
    return new FsError('EIO', `${this.peer} closed the connection in the middle of a message`);
  }

  private finish(err: Error | null): void {
    if (err && !this.failure) this.failure = new FsError('EIO', `${this.peer} connection failed: ${err.message}`);
    this.ended = true;
    const target = this.target;
    this.target = null;
    target?.reject(this.failure ?? this.truncated());
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

/**
 * A connection to HOST:PORT read by a SocketReader through one reused buffer (`onread`), for
 * connections that receive bulk data (see SocketReader).
 */
export function connectWithReader(host: string, port: number, peer: string): { socket: net.Socket; reader: SocketReader } {
  let reader: SocketReader | null = null;
  const socket = net.connect({
    host,
    port,
    onread: { buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES), callback: (n: number, buf: Buffer) => reader!.feed(buf.subarray(0, n), true) },
  });
  reader = new SocketReader(socket, peer, true);
  return { socket, reader };
}

/**
 * An accepted connection (from a server made with pauseOnConnect) moved to a socket read like
 * connectWithReader's: Node offers `onread` only to sockets it creates, so the accepted
 * socket's handle is taken over by a new one made with it (through `_handle`, which Node's own
 * net code uses the same way). A chunkserver receives every written byte on such connections:
 * with a fresh buffer per socket read, full garbage collections took a quarter of its CPU.
 * Falls back to plain 'data' events if the handle is not where Node keeps it.
 */
export function adoptWithReader(accepted: net.Socket, peer: string): { socket: net.Socket; reader: SocketReader } {
  const internals = accepted as unknown as { _handle: object | null };
  const handle = internals._handle;
  if (!handle) {
    accepted.resume();
    return { socket: accepted, reader: new SocketReader(accepted, peer) };
  }
  internals._handle = null;
  let reader: SocketReader | null = null;
  const options = {
    handle,
    readable: true,
    writable: true,
    onread: { buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES), callback: (n: number, buf: Buffer) => reader!.feed(buf.subarray(0, n), true) },
  };
  const socket = new net.Socket(options as net.SocketConstructorOpts);
  reader = new SocketReader(socket, peer, true);
  return { socket, reader };
}
