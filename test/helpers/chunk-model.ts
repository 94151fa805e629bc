/** What a chunk holds after a write, per POSIX pwrite (a gap before it reads as zeros). */
export function modelWrite(chunk: Buffer, offset: number, data: Buffer): Buffer {
  if (data.length === 0) return chunk;
  const next = Buffer.alloc(Math.max(chunk.length, offset + data.length));
  chunk.copy(next);
  data.copy(next, offset);
  return next;
}
