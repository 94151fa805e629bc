import { crc32c } from '@node-rs/crc32';
import * as fs from 'fs';
import { logger } from '../common/log';
import { BLOCK_SIZE, CHECKSUM_BYTES, blockChecksum, blockCount } from './block-checksums';
import { ChunkFile, ChunkState, dataOffsetFor } from './chunk-file';

const log = logger('chunk-store');

/**
 * Chunks in the format before one file per chunk: in chunks/<hh>/, <handle>.data held the bytes
 * (its length the size) and <handle>.meta a header
 *
 *   "CFSCHK01" | u64 handle | u64 version | u32 block size | u32 CRC32C of the 28 bytes before
 *
 * then one u32 CRC32C per 64 KiB block; <handle>.meta.tmp was a .meta being replaced. The scan
 * converts each such chunk to the current format once, and only if its data still matches its
 * checksums (converting rot would bless it with new checksums). Until the old files are removed
 * they are the truth: a crash mid-way converts again.
 */
export type LegacyKind = 'data' | 'meta' | 'tmp';
export const LEGACY_NAME = /^(\d{1,16})\.(data|meta|meta\.tmp)$/;
const HEADER_BYTES = 32;

/**
 * Converts chunk `handle`'s legacy files (`kinds` of them found) in `dataDir` and removes them;
 * the chunk's state, or null when there was no whole, intact chunk to convert.
 */
export async function convertLegacyChunk(dataDir: string, handle: number, kinds: Set<LegacyKind>, chunkSize: number): Promise<ChunkState | null> {
  const file = new ChunkFile(dataDir, handle);
  const base = file.path.replace(/\.chunk$/, '');
  const [dataPath, metaPath] = [`${base}.data`, `${base}.meta`];
  const removeAll = (): Promise<unknown> => Promise.all([dataPath, metaPath, `${metaPath}.tmp`].map((p) => fs.promises.rm(p, { force: true })));
  if (!kinds.has('data') || !kinds.has('meta')) {
    log.warn(`removing half-created or half-deleted chunk ${handle} in ${dataDir}`);
    await removeAll();
    return null;
  }
  const [data, meta] = await Promise.all([fs.promises.readFile(dataPath), fs.promises.readFile(metaPath)]);
  const version = decodeHeader(meta, handle);
  const damaged = version === null ? 'its header is damaged' : firstBadBlock(data, meta);
  if (damaged) {
    log.warn(`removing chunk ${handle} in ${dataDir} instead of converting it: ${damaged}`);
    await removeAll();
    return null;
  }
  const { state, fh } = await file.create(version!, dataOffsetFor(Math.max(chunkSize, data.length)), 0, data, null);
  await fh.close();
  // .meta first: a crash in between leaves a .data alone, which the next scan removes.
  await fs.promises.rm(metaPath);
  await removeAll();
  log.info(`converted chunk ${handle} in ${dataDir} to the one-file format`);
  return state;
}

/** Why the data does not match the checksums in `meta`, or '' when every block does. */
function firstBadBlock(data: Buffer, meta: Buffer): string {
  for (let b = 0; b < blockCount(data.length); b++) {
    const at = HEADER_BYTES + b * CHECKSUM_BYTES;
    if (at + CHECKSUM_BYTES > meta.length) return `block ${b} has no checksum`;
    if (blockChecksum(data.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE)) !== meta.readUInt32LE(at)) return `block ${b} does not match its checksum`;
  }
  return '';
}

function decodeHeader(buf: Buffer, handle: number): number | null {
  if (buf.length < HEADER_BYTES || buf.toString('latin1', 0, 8) !== 'CFSCHK01') return null;
  if (crc32c(buf.subarray(0, 28)) !== buf.readUInt32LE(28)) return null;
  if (Number(buf.readBigUInt64LE(8)) !== handle || buf.readUInt32LE(24) !== BLOCK_SIZE) return null;
  const version = Number(buf.readBigUInt64LE(16));
  return Number.isSafeInteger(version) ? version : null;
}
