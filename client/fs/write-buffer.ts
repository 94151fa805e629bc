import type { BufferPool } from '../../server/common/buffer-pool';

/**
 * One run of dirty bytes, held in `data` (which may have room to grow). A run that grows by a
 * second contiguous write moves to a slab from the pool: sequential writes, the common case,
 * then cost one copy each and no allocation.
 */
interface Extent {
  offset: number;
  data: Buffer;
  length: number;
  /** `data` is a slab to give back to the pool once the extent is written. */
  slab: boolean;
}

/** What take() hands over: the runs in write order, and how to give their memory back. */
export interface TakenExtents {
  extents: { offset: number; data: Buffer }[];
  /** Call once every extent is written (or given up): their slabs go back to the pool. */
  release(): void;
}

/**
 * The bytes written to one open file and not yet sent to the chunkservers, in write order
 * (a later extent overlapping an earlier one wins when they are written in this order).
 */
export class WriteBuffer {
  private extents: Extent[] = [];
  /** bytes held */
  bytes = 0;

  constructor(private readonly slabs: BufferPool) {}

  get empty(): boolean {
    return this.extents.length === 0;
  }

  /** Keeps a copy of `data`: the caller's buffer (FUSE's request memory) is reused after this. */
  add(offset: number, data: Buffer): void {
    if (data.length === 0) return;
    this.bytes += data.length;
    const last = this.extents[this.extents.length - 1];
    if (last && last.offset + last.length === offset) {
      if (!last.slab && last.length + data.length <= this.slabs.size) {
        const slab = this.slabs.take();
        last.data.copy(slab, 0, 0, last.length);
        last.data = slab;
        last.slab = true;
      }
      if (last.length + data.length <= last.data.length) {
        last.length += data.copy(last.data, last.length);
        return;
      }
    }
    this.extents.push({ offset, data: Buffer.from(data), length: data.length, slab: false });
  }

  /** Every extent, in write order; the buffer is empty afterwards. */
  take(): TakenExtents {
    const taken = this.extents;
    this.extents = [];
    this.bytes = 0;
    return {
      extents: taken.map((e) => ({ offset: e.offset, data: e.data.subarray(0, e.length) })),
      release: () => {
        for (const e of taken) if (e.slab) this.slabs.release(e.data);
      },
    };
  }
}
