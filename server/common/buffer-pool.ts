/**
 * Reusable buffers of one size. A fresh multi-MiB buffer per use costs page faults on first
 * touch and garbage collections (it is external memory, and enough of it makes V8 run full
 * collections every few dozen MiB): at a few hundred MB/s that was a sizable share of a
 * process's CPU. At most `keep` idle buffers are held.
 */
export class BufferPool {
  private readonly idle: Buffer[] = [];

  constructor(
    /** Bytes per buffer. */
    readonly size: number,
    private readonly keep = 8,
    private readonly allocate: (bytes: number) => Buffer = (bytes) => Buffer.allocUnsafeSlow(bytes),
  ) {}

  /** A buffer of `size` bytes (contents undefined); give it back with release() when done. */
  take(): Buffer {
    return this.idle.pop() ?? this.allocate(this.size);
  }

  /** Returns a buffer from take(), or a view starting where it starts; nothing may use it afterwards. */
  release(buf: Buffer): void {
    if (this.idle.length < this.keep) this.idle.push(Buffer.from(buf.buffer, buf.byteOffset, this.size));
  }
}
