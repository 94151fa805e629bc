import * as fs from 'fs';
import * as path from 'path';
import { Namespace } from '../namespace';
import { ImageEntry, imageEntries, imageHeader, ImageHeader, ImageLoader } from '../namespace-image';
import { decodeFrame, encodeFrame } from './frame';
import { CHECKPOINT_MAGIC, checkpointPath, fileHeader, FILE_HEADER_BYTES, fsyncDir, readFileHeader } from './meta-dir';

/**
 * Checkpoint file: header (magic, txid), then frames whose epoch field is the frame's index:
 * frame 0 is the JSON image header, frames 1..n-2 JSON arrays of image entries, and the last
 * frame the trailer {end, frames, entries}. A checkpoint without its trailer, or with any
 * damaged or out-of-order frame, does not verify.
 */
const ENTRIES_PER_FRAME = 4096;
const WRITE_BUFFER_BYTES = 4 * 1024 * 1024;

interface CheckpointMeta extends ImageHeader {
  epoch: number;
}
interface Trailer {
  end: true;
  frames: number;
  entries: number;
}

export interface LoadedCheckpoint {
  ns: Namespace;
  txid: number;
  epoch: number;
}

/**
 * Writes `ns` as the checkpoint for `txid` into `dir`: to a temporary file, fsynced, then
 * renamed into place and the directory fsynced, so a crash leaves either nothing or a whole
 * checkpoint. Returns the file's size in bytes.
 */
export function writeCheckpoint(dir: string, ns: Namespace, txid: number, epoch: number): number {
  const final = checkpointPath(dir, txid);
  const tmp = `${final}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  let bytes = 0;
  try {
    let chunks: Buffer[] = [];
    let buffered = 0;
    const put = (b: Buffer) => {
      chunks.push(b);
      buffered += b.length;
      if (buffered >= WRITE_BUFFER_BYTES) flush();
    };
    const flush = () => {
      const buf = Buffer.concat(chunks);
      for (let off = 0; off < buf.length; ) off += fs.writeSync(fd, buf, off);
      bytes += buf.length;
      chunks = [];
      buffered = 0;
    };
    let frame = 0;
    const putJson = (value: unknown) => put(encodeFrame(txid, frame++, Buffer.from(JSON.stringify(value))));
    put(fileHeader(CHECKPOINT_MAGIC, txid));
    const meta: CheckpointMeta = { ...imageHeader(ns), epoch };
    putJson(meta);
    let batch: ImageEntry[] = [];
    let entries = 0;
    for (const e of imageEntries(ns)) {
      batch.push(e);
      entries++;
      if (batch.length === ENTRIES_PER_FRAME) {
        putJson(batch);
        batch = [];
      }
    }
    if (batch.length > 0) putJson(batch);
    const trailer: Trailer = { end: true, frames: frame + 1, entries };
    putJson(trailer);
    flush();
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, final);
  fsyncDir(path.dirname(final));
  return bytes;
}

/** Reads and fully verifies a checkpoint; throws an Error naming the file and offset if not. */
export function readCheckpoint(file: string): LoadedCheckpoint {
  return scan(file, true) as LoadedCheckpoint;
}

/** Verifies framing, order and trailer without building the namespace (cheap). */
export function verifyCheckpoint(file: string): boolean {
  try {
    scan(file, false);
    return true;
  } catch {
    return false;
  }
}

function scan(file: string, build: boolean): LoadedCheckpoint | null {
  const buf = fs.readFileSync(file);
  const txid = readFileHeader(buf, CHECKPOINT_MAGIC);
  if (txid === null) throw new Error(`${file} offset 0: not a checkpoint (bad header)`);
  let off = FILE_HEADER_BYTES;
  let index = 0;
  let loader: ImageLoader | null = null;
  let epoch = 0;
  let entries = 0;
  for (;;) {
    const f = decodeFrame(buf, off);
    if (!f || f.txid !== txid || f.epoch !== index) {
      throw new Error(`${file} offset ${off}: damaged or missing checkpoint frame ${index}`);
    }
    const value: unknown = JSON.parse(f.payload.toString());
    if (index === 0) {
      const meta = value as CheckpointMeta;
      epoch = meta.epoch;
      if (build) loader = new ImageLoader(meta);
    } else if (Array.isArray(value)) {
      const batch = value as ImageEntry[];
      entries += batch.length;
      if (loader) for (const e of batch) loader.add(e);
    } else {
      const t = value as Trailer;
      if (!t.end || t.frames !== index + 1 || t.entries !== entries || f.end !== buf.length) {
        throw new Error(`${file} offset ${off}: checkpoint trailer does not match its contents`);
      }
      return loader ? { ns: loader.finish(), txid, epoch } : null;
    }
    off = f.end;
    index++;
  }
}
