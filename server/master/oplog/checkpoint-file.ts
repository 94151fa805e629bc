import * as fs from 'fs';
import * as path from 'path';
import { decodeImageFrame, encodeImage, imageFrameEntries } from '../image-codec';
import { Namespace } from '../namespace';
import { checkImageHeader, imageHeader, ImageHeader, ImageLoader } from '../namespace-image';
import { decodeFrame, encodeFrame, Frame, FRAME_HEADER_BYTES, MAX_PAYLOAD_BYTES } from './frame';
import { CHECKPOINT_MAGIC, checkpointPath, fileHeader, FILE_HEADER_BYTES, fsyncDir, readFileHeader } from './meta-dir';

/**
 * Checkpoint file: header (magic, txid), then frames whose epoch field is the frame's index:
 * frame 0 is the JSON image header, frames 1..n-2 binary image entries (image-codec.ts), and
 * the last frame of the file the JSON trailer {end, frames, entries}. A checkpoint without its
 * trailer, or with any damaged or out-of-order frame, does not verify.
 */
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

/** Initial size of the read buffer; it grows to the largest frame. */
const READ_BUFFER_BYTES = 2 * 1024 * 1024;

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
    const write = (buf: Buffer) => {
      for (let off = 0; off < buf.length; ) off += fs.writeSync(fd, buf, off);
      bytes += buf.length;
    };
    let frame = 0;
    // Entry frames are ~1 MiB, so writing each frame directly needs no further buffering.
    const putFrame = (payload: Buffer) => write(encodeFrame(txid, frame++, payload));
    const putJson = (value: unknown) => putFrame(Buffer.from(JSON.stringify(value)));
    write(fileHeader(CHECKPOINT_MAGIC, txid));
    const meta: CheckpointMeta = { ...imageHeader(ns), epoch };
    putJson(meta);
    const entries = encodeImage(ns, putFrame);
    const trailer: Trailer = { end: true, frames: frame + 1, entries };
    putJson(trailer);
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

/** Verifies framing, order, image format and trailer without decoding entries (cheap). */
export function verifyCheckpoint(file: string): boolean {
  try {
    scan(file, false);
    return true;
  } catch {
    return false;
  }
}

function scan(file: string, build: boolean): LoadedCheckpoint | null {
  const reader = new FrameReader(file);
  try {
    const txid = readFileHeader(reader.read(0, FILE_HEADER_BYTES), CHECKPOINT_MAGIC);
    if (txid === null) throw new Error(`${file} offset 0: not a checkpoint (bad header)`);
    let off = FILE_HEADER_BYTES;
    let loader: ImageLoader | null = null;
    let epoch = 0;
    let entries = 0;
    for (let index = 0; ; index++) {
      const f = reader.frame(off);
      if (!f || f.txid !== txid || f.epoch !== index) {
        throw new Error(`${file} offset ${off}: damaged or missing checkpoint frame ${index}`);
      }
      try {
        if (index === 0) {
          const meta = JSON.parse(f.payload.toString()) as CheckpointMeta;
          if (build) loader = new ImageLoader(meta);
          else checkImageHeader(meta);
          epoch = meta.epoch;
        } else if (f.end < reader.size) {
          entries += imageFrameEntries(f.payload);
          if (loader) decodeImageFrame(f.payload, loader);
        } else {
          const t = JSON.parse(f.payload.toString()) as Trailer;
          if (!t.end || t.frames !== index + 1 || t.entries !== entries) {
            throw new Error('checkpoint trailer does not match its contents');
          }
          return loader ? { ns: loader.finish(), txid, epoch } : null;
        }
      } catch (err) {
        throw new Error(`${file} offset ${off}: ${(err as Error).message}`);
      }
      off = f.end;
    }
  } finally {
    reader.close();
  }
}

/**
 * Reads a file frame by frame into one reused buffer, so that loading holds one frame of the
 * file at a time next to the namespace being built, rather than the whole file.
 */
class FrameReader {
  readonly size: number;
  private readonly fd: number;
  private buf = Buffer.allocUnsafe(READ_BUFFER_BYTES);

  constructor(file: string) {
    this.fd = fs.openSync(file, 'r');
    this.size = fs.fstatSync(this.fd).size;
  }

  /** Up to `bytes` bytes at `pos` (fewer at the end of the file), valid until the next read. */
  read(pos: number, bytes: number): Buffer {
    if (bytes > this.buf.length) this.buf = Buffer.allocUnsafe(bytes);
    let got = 0;
    while (got < bytes) {
      const n = fs.readSync(this.fd, this.buf, got, bytes - got, pos + got);
      if (n === 0) break;
      got += n;
    }
    return this.buf.subarray(0, got);
  }

  /** The intact frame at `pos` (its offset and end are file positions), or null. */
  frame(pos: number): Frame | null {
    const head = this.read(pos, FRAME_HEADER_BYTES);
    if (head.length < FRAME_HEADER_BYTES) return null;
    const length = head.readUInt32LE(0);
    if (length > MAX_PAYLOAD_BYTES) return null;
    const f = decodeFrame(this.read(pos, FRAME_HEADER_BYTES + length), 0);
    return f && { ...f, offset: pos, end: pos + f.end };
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
