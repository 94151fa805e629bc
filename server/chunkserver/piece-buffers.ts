import { allocAligned } from './direct-io';
import { MAX_CHUNK_IO_BYTES } from '../common/proto';

/** Pieces smaller than this are simply allocated: reuse pays off for large ones only. */
const POOLED_FROM_BYTES = 256 * 1024;

/**
 * Reusable buffers for the pieces of incoming writes. A fresh 8 MiB buffer per write costs
 * page faults on first touch and garbage collections (it is external memory): at a few hundred
 * MB/s that was a sizable share of a chunkserver's CPU. At most `keep` idle buffers are held.
 * They are page-aligned where possible, so that the chunk store can write them with O_DIRECT
 * (direct-io.ts).
 */
export class PieceBuffers {
  private readonly idle: Buffer[] = [];

  constructor(private readonly keep = 8) {}

  /** A buffer of `length` bytes (contents undefined); give it back with release() when done. */
  take(length: number): Buffer {
    if (length < POOLED_FROM_BYTES) return Buffer.allocUnsafe(length);
    return (this.idle.pop() ?? allocAligned(MAX_CHUNK_IO_BYTES) ?? Buffer.allocUnsafeSlow(MAX_CHUNK_IO_BYTES)).subarray(0, length);
  }

  /** Returns a buffer from take(); nothing may use it afterwards. */
  release(piece: Buffer): void {
    if (piece.length < POOLED_FROM_BYTES || this.idle.length >= this.keep) return;
    this.idle.push(Buffer.from(piece.buffer, piece.byteOffset, MAX_CHUNK_IO_BYTES));
  }
}
