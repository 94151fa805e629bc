import { crc32c } from '@node-rs/crc32';

/**
 * Chunk data is checksummed in fixed 64 KiB blocks (the last block of a chunk may be shorter):
 * small enough that a partial overwrite re-reads little, large enough that the checksums of a
 * 64 MiB chunk take 4 KiB.
 */
export const BLOCK_SIZE = 64 * 1024;
export const CHECKSUM_BYTES = 4;
/** Stands for a checksum that is not on disk (never equal to a CRC32C, which is unsigned). */
export const MISSING_CHECKSUM = -1;

const FULL_ZERO_BLOCK_CRC = crc32c(Buffer.alloc(BLOCK_SIZE));

export const blockOf = (offset: number): number => Math.floor(offset / BLOCK_SIZE);
export const blockCount = (size: number): number => Math.ceil(size / BLOCK_SIZE);

export function blockChecksum(bytes: Uint8Array): number {
  return crc32c(bytes);
}

/** Checksum of a block that is all zeros (a hole), without allocating one for full blocks. */
export function zeroBlockChecksum(length: number): number {
  return length === BLOCK_SIZE ? FULL_ZERO_BLOCK_CRC : crc32c(Buffer.alloc(length));
}

export function encodeChecksums(checksums: number[]): Buffer {
  const buf = Buffer.allocUnsafe(checksums.length * CHECKSUM_BYTES);
  checksums.forEach((c, i) => buf.writeUInt32LE(c, i * CHECKSUM_BYTES));
  return buf;
}

/** `count` checksums from `buf`; those past its end (a short file) are MISSING_CHECKSUM. */
export function decodeChecksums(buf: Buffer, count: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const at = i * CHECKSUM_BYTES;
    out.push(at + CHECKSUM_BYTES <= buf.length ? buf.readUInt32LE(at) : MISSING_CHECKSUM);
  }
  return out;
}
