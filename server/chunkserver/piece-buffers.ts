import { allocAligned } from './direct-io';
import { BufferPool } from '../common/buffer-pool';
import { MAX_CHUNK_IO_BYTES } from '../common/proto';

/** Pieces smaller than this are simply allocated: reuse pays off for large ones only. */
const POOLED_FROM_BYTES = 256 * 1024;

/**
 * Buffers for the pieces of incoming writes: large ones reused (BufferPool), on page-aligned
 * memory where possible, so that the chunk store can write them with O_DIRECT (direct-io.ts).
 */
export class PieceBuffers {
  private readonly pool = new BufferPool(MAX_CHUNK_IO_BYTES, 8, (bytes) => allocAligned(bytes) ?? Buffer.allocUnsafeSlow(bytes));

  /** A buffer of `length` bytes (contents undefined); give it back with release() when done. */
  take(length: number): Buffer {
    return length < POOLED_FROM_BYTES ? Buffer.allocUnsafe(length) : this.pool.take().subarray(0, length);
  }

  /** Returns a buffer from take(); nothing may use it afterwards. */
  release(piece: Buffer): void {
    if (piece.length >= POOLED_FROM_BYTES) this.pool.release(piece);
  }
}
