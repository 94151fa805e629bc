import * as fs from 'fs';
import { readHeader, withFile } from '../../server/chunkserver/chunk-file';

/** Inverts some bits of the byte at `offset` in place: rot that checksums must catch. */
export function flipByte(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, offset);
  b[0] ^= 0x5a;
  fs.writeSync(fd, b, 0, 1, offset);
  fs.closeSync(fd);
}

/** Where a chunk file's data starts, from its header (the file must hold a valid one). */
export async function chunkDataOffset(file: string): Promise<number> {
  const header = await withFile(file, 'r', readHeader);
  if (!header) throw new Error(`${file} holds no valid chunk header`);
  return header.state.dataOffset;
}

/** flipByte on byte `offset` of the chunk's data in its file `file`. */
export async function flipChunkByte(file: string, offset: number): Promise<void> {
  flipByte(file, (await chunkDataOffset(file)) + offset);
}
