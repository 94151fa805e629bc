import * as fs from 'fs';

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
 * writes, tails), or when the file system refuses O_DIRECT.
 */
const ALIGN = 4096;
const WASM_PAGE = 64 * 1024;

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
 * Writes all of `bytes` at `position` of the file `file` (open as `fh` for buffered writes):
 * with O_DIRECT when directWritable() allows and the file system supports it. Either way the
 * caller still syncs (O_DIRECT does not make the file's size or block map durable).
 */
export async function writeMaybeDirect(fh: fs.promises.FileHandle, file: string, bytes: Buffer, position: number): Promise<void> {
  if (directWritable(bytes, position)) {
    let direct: fs.promises.FileHandle | null = null;
    try {
      direct = await fs.promises.open(file, fs.constants.O_WRONLY | fs.constants.O_DIRECT);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err; // EINVAL: no O_DIRECT on this file system
    }
    if (direct) {
      try {
        return await writeFully(direct, bytes, position);
      } finally {
        await direct.close();
      }
    }
  }
  await writeFully(fh, bytes, position);
}

export async function writeFully(fh: fs.promises.FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) done += (await fh.write(buf, done, buf.length - done, position + done)).bytesWritten;
}
