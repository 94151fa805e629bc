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

/** Bytes of a file, at their offset. */
export interface Run {
  offset: number;
  data: Buffer;
}

/** Copies of the parts of `runs` in [offset, end), in their order. */
export function copiesIn(runs: Iterable<Run>, offset: number, end: number): Run[] {
  const copies: Run[] = [];
  for (const r of runs) {
    const from = Math.max(offset, r.offset);
    const to = Math.min(end, r.offset + r.data.length);
    if (from < to) copies.push({ offset: from, data: Buffer.from(r.data.subarray(from - r.offset, to - r.offset)) });
  }
  return copies;
}

/** What take() hands over: the runs in offset order, and how to give their memory back. */
export interface TakenExtents {
  extents: Run[];
  /** Call once every extent is written (or given up): their slabs go back to the pool. */
  release(): void;
}

/** The bytes written to one open file and not yet sent to the chunkservers. */
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

  /** Copies of the bytes held in [offset, end), in write order (so laid over in turn, the latest wins). */
  copiesIn(offset: number, end: number): Run[] {
    return copiesIn(this.extents.map((e) => ({ offset: e.offset, data: e.data.subarray(0, e.length) })), offset, end);
  }

  /** Extents held: at most this many writes to the chunkservers once taken (see take). */
  get extentCount(): number {
    return this.extents.length;
  }

  /**
   * Everything held, as disjoint runs in offset order; the buffer is empty afterwards. Extents
   * that touch or overlap become one run, with the later write's bytes where they overlap: a
   * file written backwards, or rewritten in place, goes out in one write rather than one per
   * write(2). Extents written forwards one after the other stay as they are (no copy).
   */
  take(): TakenExtents {
    const taken = this.extents;
    this.extents = [];
    this.bytes = 0;
    return {
      extents: coalesce(taken),
      release: () => {
        for (const e of taken) if (e.slab) this.slabs.release(e.data);
      },
    };
  }
}

/** Extents (in offset order) that follow each other in write order too, each starting where the last ended. */
function inSequence(group: { e: Extent; order: number }[]): boolean {
  for (let k = 1; k < group.length; k++) {
    const [prev, next] = [group[k - 1], group[k]];
    if (next.order < prev.order || next.e.offset !== prev.e.offset + prev.e.length) return false;
  }
  return true;
}

/** `extents` (in write order) as disjoint runs in offset order (see take). */
function coalesce(extents: Extent[]): Run[] {
  const byOffset = extents.map((e, order) => ({ e, order })).sort((a, b) => a.e.offset - b.e.offset || a.order - b.order);
  const runs: Run[] = [];
  for (let i = 0; i < byOffset.length; ) {
    const start = byOffset[i].e.offset;
    let end = start + byOffset[i].e.length;
    let j = i + 1;
    for (; j < byOffset.length && byOffset[j].e.offset <= end; j++) end = Math.max(end, byOffset[j].e.offset + byOffset[j].e.length);
    const group = byOffset.slice(i, j);
    if (inSequence(group)) {
      // Written forwards, each where the last ended (a slab, then the write that did not fit):
      // as they are, without copying a slab's worth.
      for (const { e } of group) runs.push({ offset: e.offset, data: e.data.subarray(0, e.length) });
    } else {
      // The run covers [start, end) without a gap; copied in write order, later bytes win.
      const data = Buffer.allocUnsafe(end - start);
      for (const { e } of group.sort((a, b) => a.order - b.order)) e.data.copy(data, e.offset - start, 0, e.length);
      runs.push({ offset: start, data });
    }
    i = j;
  }
  return runs;
}
