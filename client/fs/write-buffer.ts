/** One run of dirty bytes: contiguous writes are kept as a list of copies, joined once at flush. */
interface Extent {
  offset: number;
  parts: Buffer[];
  length: number;
}

/**
 * The bytes written to one open file and not yet sent to the chunkservers, in write order
 * (a later extent overlapping an earlier one wins when they are written in this order).
 * Sequential writes, the common case, grow one extent.
 */
export class WriteBuffer {
  private extents: Extent[] = [];
  /** bytes held */
  bytes = 0;

  get empty(): boolean {
    return this.extents.length === 0;
  }

  /** Keeps a copy of `data`: the caller's buffer (FUSE's request memory) is reused after this. */
  add(offset: number, data: Buffer): void {
    if (data.length === 0) return;
    const copy = Buffer.from(data);
    const last = this.extents[this.extents.length - 1];
    if (last && last.offset + last.length === offset) {
      last.parts.push(copy);
      last.length += copy.length;
    } else {
      this.extents.push({ offset, parts: [copy], length: copy.length });
    }
    this.bytes += copy.length;
  }

  /** Every extent as one buffer, in write order; the buffer is empty afterwards. */
  take(): { offset: number; data: Buffer }[] {
    const out = this.extents.map((e) => ({ offset: e.offset, data: e.parts.length === 1 ? e.parts[0] : Buffer.concat(e.parts, e.length) }));
    this.extents = [];
    this.bytes = 0;
    return out;
  }
}
