import { crc32c } from '@node-rs/crc32';

/**
 * Record framing shared by log segments and checkpoint files:
 *
 *   u32 payload length | u32 CRC32C of everything after it | u64 txid | u64 epoch | payload
 *
 * (little-endian). The CRC covers txid, epoch and payload, so a torn or rotted record is
 * detected whatever part of it was damaged.
 */
export const FRAME_HEADER_BYTES = 24;
/** Larger lengths are treated as damage, not as a record. */
export const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

export interface Frame {
  txid: number;
  epoch: number;
  payload: Buffer;
  /** Byte offset of the frame in its buffer/file. */
  offset: number;
  /** Offset just past the frame. */
  end: number;
}

export function encodeFrame(txid: number, epoch: number, payload: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  buf.writeUInt32LE(payload.length, 0);
  writeU64(buf, txid, 8);
  writeU64(buf, epoch, 16);
  payload.copy(buf, FRAME_HEADER_BYTES);
  buf.writeUInt32LE(crc32c(buf.subarray(8)), 4);
  return buf;
}

/** The frame at `offset`, or null when the bytes there are not a whole, intact frame. */
export function decodeFrame(buf: Buffer, offset: number): Frame | null {
  if (offset + FRAME_HEADER_BYTES > buf.length) return null;
  const len = buf.readUInt32LE(offset);
  const end = offset + FRAME_HEADER_BYTES + len;
  if (len > MAX_PAYLOAD_BYTES || end > buf.length) return null;
  if (crc32c(buf.subarray(offset + 8, end)) !== buf.readUInt32LE(offset + 4)) return null;
  return {
    txid: readU64(buf, offset + 8),
    epoch: readU64(buf, offset + 16),
    payload: buf.subarray(offset + FRAME_HEADER_BYTES, end),
    offset,
    end,
  };
}

/**
 * After damage at `from`, looks for any intact frame further on whose txid lies in
 * (minTxid, minTxid + window]. Finding one means the damage is in the middle of the data
 * (corruption), not a torn tail. The txid filter keeps the scan cheap.
 */
export function findIntactFrameAfter(buf: Buffer, from: number, minTxid: number, window = 1e9): Frame | null {
  for (let pos = from + 1; pos + FRAME_HEADER_BYTES <= buf.length; pos++) {
    const txid = readU64(buf, pos + 8);
    if (txid <= minTxid || txid > minTxid + window) continue;
    const f = decodeFrame(buf, pos);
    if (f) return f;
  }
  return null;
}

export function writeU64(buf: Buffer, value: number, offset: number): void {
  buf.writeUInt32LE(value % 0x1_0000_0000, offset);
  buf.writeUInt32LE(Math.floor(value / 0x1_0000_0000), offset + 4);
}

export function readU64(buf: Buffer, offset: number): number {
  return buf.readUInt32LE(offset) + buf.readUInt32LE(offset + 4) * 0x1_0000_0000;
}
