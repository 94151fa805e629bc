import { FsError } from './fs-error';

/**
 * Chunks one file may span. The master keeps a file's chunk list whole, a slot for every chunk
 * up to its last, so one write far past a file's end costs a slot for each hole before it (a
 * one-byte write at 2^62 ran the master out of memory). With the default 64 MiB chunks a file
 * reaches 16 TiB, ext4's limit with 4 KiB blocks.
 */
export const MAX_CHUNKS_PER_FILE = 1 << 18;

/** The largest size of a file made of chunks of `chunkSize` bytes. */
export function maxFileSize(chunkSize: number): number {
  return chunkSize * MAX_CHUNKS_PER_FILE;
}

/** EFBIG (as a local file system answers a write or truncate past its limit) if `size` passes it. */
export function checkFileSize(size: number, chunkSize: number): void {
  const max = maxFileSize(chunkSize);
  if (size > max) throw new FsError('EFBIG', `a size of ${size} bytes passes the largest file, ${max} bytes (${MAX_CHUNKS_PER_FILE} chunks)`);
}
