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
 * converts each such chunk to the current format once. While both old files exist they are the
 * truth (a crash mid-way converts again); a .data left alone beside a .chunk is the end of a
 * conversion a crash cut short.
 */
const HEADER_BYTES = 32;

/** The handle and kind ('data', 'meta' or 'meta.tmp') a legacy file's name stands for, or null. */
export function legacyFileName(name: string): { handle: number; kind: string } | null {
  const m = /^(\d{1,16})\.(data|meta|meta\.tmp)$/.exec(name);
  return m && Number.isSafeInteger(Number(m[1])) ? { handle: Number(m[1]), kind: m[2] } : null;
}

/**
 * Converts chunk `handle`'s legacy pair (.data and .meta, both present) in `dataDir` and removes
 * the legacy files; the chunk's state, or null when its header was damaged. Blocks whose data no
 * longer matches the old checksum are converted poisoned: they read as corrupt, as they did.
 */
export async function convertLegacyChunk(dataDir: string, handle: number, chunkSize: number): Promise<ChunkState | null> {
  const file = new ChunkFile(dataDir, handle);
  const [dataPath, metaPath] = legacyPaths(file);
  const [data, meta] = await Promise.all([fs.promises.readFile(dataPath), fs.promises.readFile(metaPath)]);
  const version = decodeHeader(meta, handle);
  if (version === null) {
    log.warn(`removing chunk ${handle} in ${dataDir} instead of converting it: its header is damaged`);
    await removeLegacyFiles(dataDir, handle);
    return null;
  }
  const { state, fh } = await file.create(version, dataOffsetFor(Math.max(chunkSize, data.length)), 0, data, null);
  await fh.close();
  const bad = badBlocks(data, meta);
  for (const block of bad) await file.poisonBlock(state, block);
  if (bad.length > 0) log.warn(`chunk ${handle} in ${dataDir}: blocks ${bad.join(', ')} did not match their checksums and stay corrupt`);
  // .meta first: a crash in between leaves a .data beside the .chunk, which the next scan removes.
  await fs.promises.rm(metaPath);
  await removeLegacyFiles(dataDir, handle);
  log.info(`converted chunk ${handle} in ${dataDir} to the one-file format`);
  return state;
}

/** Removes whatever legacy files chunk `handle` has in `dataDir`. */
export async function removeLegacyFiles(dataDir: string, handle: number): Promise<void> {
  const [dataPath, metaPath] = legacyPaths(new ChunkFile(dataDir, handle));
  await Promise.all([dataPath, metaPath, `${metaPath}.tmp`].map((p) => fs.promises.rm(p, { force: true })));
}

const legacyPaths = (file: ChunkFile): [string, string] => {
  const base = file.path.replace(/\.chunk$/, '');
  return [`${base}.data`, `${base}.meta`];
};

/** The blocks whose data does not match its checksum in `meta` (or that have none there). */
function badBlocks(data: Buffer, meta: Buffer): number[] {
  const bad: number[] = [];
  for (let b = 0; b < blockCount(data.length); b++) {
    const at = HEADER_BYTES + b * CHECKSUM_BYTES;
    if (at + CHECKSUM_BYTES > meta.length || blockChecksum(data.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE)) !== meta.readUInt32LE(at)) bad.push(b);
  }
  return bad;
}

function decodeHeader(buf: Buffer, handle: number): number | null {
  if (buf.length < HEADER_BYTES || buf.toString('latin1', 0, 8) !== 'CFSCHK01') return null;
  if (crc32c(buf.subarray(0, 28)) !== buf.readUInt32LE(28)) return null;
  if (Number(buf.readBigUInt64LE(8)) !== handle || buf.readUInt32LE(24) !== BLOCK_SIZE) return null;
  const version = Number(buf.readBigUInt64LE(16));
  return Number.isSafeInteger(version) ? version : null;
}
