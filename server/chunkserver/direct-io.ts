import * as fs from 'fs';
import { promisify } from 'util';
import { BufferPool } from '../common/buffer-pool';
import { MAX_CHUNK_IO_BYTES } from '../common/proto';

/**
 * Chunk data written with O_DIRECT, bypassing the page cache. Why: on this kind of machine (a
 * VM whose page cache the host reclaims) a buffered write pays for fresh page-cache pages on
 * every write: 1 GiB written with dd cost 0.6-4 s of system time buffered and 0.2 s direct, and
 * a chunkserver spent half its CPU in that copy. The data goes to disk either way before a write
 * is acknowledged (fdatasync), so the page cache only ever held it for nothing.
 *
 * O_DIRECT needs the memory, the file offset and the length aligned to the device's block size.
 * Node cannot allocate aligned buffers, but a WebAssembly.Memory is page-aligned mmap'ed
 * memory: allocAligned() hands out Buffers over one. writeMaybeDirect() uses O_DIRECT only for
 * such a buffer at an aligned offset and length, and a plain write otherwise (small or unaligned
 * writes, tails), or when the file system refuses O_DIRECT. Large reads go the same way
 * (readMaybeDirect): a cold read through the page cache paid for fresh pages just the same.
 */
const ALIGN = 4096;
const WASM_PAGE = 64 * 1024;

/**
 * The calls chunk I/O makes on an open file. A FileHandle is one (each call a thread-pool round
 * trip), as is threadedIo() for a plain descriptor; blockingIo() is the other, for small work
 * done on the main thread when a round trip's two thread wake-ups would cost more than the call
 * itself.
 */
export interface FileIo {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  write(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  stat(): Promise<{ nlink: number }>;
  truncate(length: number): Promise<void>;
  datasync(): Promise<void>;
}

/** The open file `fd` through blocking calls: each promise is settled when it is returned. */
export function blockingIo(fd: number): FileIo {
  return {
    read: async (buffer, offset, length, position) => ({ bytesRead: fs.readSync(fd, buffer, offset, length, position) }),
    write: async (buffer, offset, length, position) => ({ bytesWritten: fs.writeSync(fd, buffer, offset, length, position) }),
    stat: async () => fs.fstatSync(fd),
    truncate: async (length) => fs.ftruncateSync(fd, length),
    datasync: async () => fs.fdatasyncSync(fd),
  };
}

const readAsync = promisify(fs.read);
const writeAsync = promisify(fs.write);
const fstatAsync = promisify(fs.fstat);
const ftruncateAsync = promisify(fs.ftruncate);
const fdatasyncAsync = promisify(fs.fdatasync);

/** The open file `fd` through the thread pool, as a FileHandle's calls go. */
export function threadedIo(fd: number): FileIo {
  return {
    read: (buffer, offset, length, position) => readAsync(fd, buffer, offset, length, position),
    write: (buffer, offset, length, position) => writeAsync(fd, buffer, offset, length, position),
    stat: () => fstatAsync(fd),
    truncate: (length) => ftruncateAsync(fd, length),
    datasync: () => fdatasyncAsync(fd),
  };
}

// The one part of the WebAssembly API used here (tsconfig has no DOM/WebAssembly lib).
declare const WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer } };

/** Backing stores of buffers from allocAligned (each page-aligned). */
const aligned = new WeakSet<ArrayBufferLike>();

/**
 * A buffer of `bytes` (a multiple of 64 KiB) on page-aligned memory, or null when none can be
 * had (every WebAssembly.Memory reserves address space, which V8 bounds).
 */
export function allocAligned(bytes: number): Buffer | null {
  if (bytes % WASM_PAGE !== 0) throw new RangeError(`aligned buffers come in multiples of ${WASM_PAGE} bytes, not ${bytes}`);
  try {
    const pages = bytes / WASM_PAGE;
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    aligned.add(memory.buffer);
    return Buffer.from(memory.buffer);
  } catch {
    return null;
  }
}

/** Whether `bytes` at `position` qualifies for O_DIRECT. */
export function directWritable(bytes: Buffer, position: number): boolean {
  return aligned.has(bytes.buffer) && bytes.byteOffset % ALIGN === 0 && bytes.length % ALIGN === 0 && position % ALIGN === 0;
}

/**
 * Writes at least this large go around the page cache when they may (directWritable): a
 * smaller one costs less buffered than the open and close of a file for it (three thread-pool
 * round trips: a flush of 128 scattered 8 KiB writes spent most of its time in them).
 */
const DIRECT_WRITE_FROM_BYTES = 256 * 1024;

/** Whether writeMaybeDirect() writes `bytes` at `position` with O_DIRECT (where the file system has it). */
export function writesDirect(bytes: Buffer, position: number): boolean {
  return bytes.length >= DIRECT_WRITE_FROM_BYTES && directWritable(bytes, position);
}

/**
 * Writes all of `bytes` at `position` of the file `file` (open as `fh` for buffered writes):
 * with O_DIRECT when writesDirect() says so and the file system supports it. Either way the
 * caller still syncs (O_DIRECT does not make the file's size or block map durable).
 */
export async function writeMaybeDirect(fh: FileIo, file: string, bytes: Buffer, position: number): Promise<void> {
  const direct = writesDirect(bytes, position) ? await openDirect(file, fs.constants.O_WRONLY) : null;
  if (!direct) return writeFully(fh, bytes, position);
  try {
    await writeFully(direct, bytes, position);
  } finally {
    await direct.close();
  }
}

/** Reads at least this large, at an aligned position, go around the page cache. */
const DIRECT_READ_FROM_BYTES = 256 * 1024;
/** Aligned buffers for direct reads, up to a chunk piece plus a block of alignment. */
const readBuffers = new BufferPool(MAX_CHUNK_IO_BYTES + WASM_PAGE, 4, (bytes) => allocAligned(bytes) ?? Buffer.allocUnsafeSlow(bytes));

/**
 * Reads into `buf` from `position` of the file `file` (open as `fh`) until it is full or the
 * file ends; returns the bytes read. A large read at an aligned position goes through an
 * aligned buffer with O_DIRECT and is copied out (a memory copy costs far less than filling
 * fresh page-cache pages); others, or where O_DIRECT is refused, read through `fh`.
 */
export async function readMaybeDirect(fh: FileIo, file: string, buf: Buffer, position: number): Promise<number> {
  const span = Math.ceil(buf.length / ALIGN) * ALIGN; // O_DIRECT lengths are whole blocks; the file's end cuts it short
  if (buf.length < DIRECT_READ_FROM_BYTES || position % ALIGN !== 0 || span > readBuffers.size) return readFully(fh, buf, position);
  const bounce = readBuffers.take();
  try {
    const direct = aligned.has(bounce.buffer) ? await openDirect(file, fs.constants.O_RDONLY) : null;
    if (!direct) return await readFully(fh, buf, position);
    try {
      const got = await readFully(direct, bounce.subarray(0, span), position);
      return bounce.copy(buf, 0, 0, Math.min(got, buf.length));
    } finally {
      await direct.close();
    }
  } finally {
    readBuffers.release(bounce);
  }
}

/** `file` opened with O_DIRECT and `flags`, or null where the file system refuses O_DIRECT (EINVAL). */
async function openDirect(file: string, flags: number): Promise<fs.promises.FileHandle | null> {
  try {
    return await fs.promises.open(file, flags | fs.constants.O_DIRECT);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EINVAL') return null;
    throw err;
  }
}

/** Reads into `buf` from `position` until it is full or the file ends; returns bytes read. */
export async function readFully(fh: FileIo, buf: Buffer, position: number): Promise<number> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

export async function writeFully(fh: FileIo, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) done += (await fh.write(buf, done, buf.length - done, position + done)).bytesWritten;
}
