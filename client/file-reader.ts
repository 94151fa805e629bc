import { FsError } from '../server/common/fs-error';
import { MAX_CHUNK_IO_BYTES } from '../server/common/proto';
import type { ChunkClientPool } from './chunk-client';
import type { MasterClient } from './master-client';

/** Chunk locations asked for at a time. */
const LOCATIONS_PER_CALL = 64;

/**
 * Reads file data straight from chunkservers: locations from the master (fetched a window at
 * a time), then each piece from the least busy replica (ChunkClientPool.byReadLoad), trying
 * the next one on any error (a replica with a bad checksum refuses and tells the master
 * itself, through its heartbeat). Holes, and the part of a chunk never written, read as zeros up to the file size.
 */
export class FileReader {
  constructor(
    private readonly master: MasterClient,
    private readonly peers: ChunkClientPool,
  ) {}

  /** The whole file, piece by piece, in order (what `get` and `cat` use). */
  async *pieces(path: string, pieceBytes = MAX_CHUNK_IO_BYTES): AsyncGenerator<Buffer> {
    const { size } = await this.master.getattr(path);
    let offset = 0;
    for (let first = 0; offset < size; first += LOCATIONS_PER_CALL) {
      const { chunks, chunkSize } = await this.master.chunkLocations(path, first, LOCATIONS_PER_CALL);
      const windowEnd = Math.min(size, (first + LOCATIONS_PER_CALL) * chunkSize);
      while (offset < windowEnd) {
        const index = Math.floor(offset / chunkSize);
        const inChunk = offset - index * chunkSize;
        const length = Math.min(pieceBytes, chunkSize - inChunk, size - offset);
        const chunk = chunks.find((c) => c.index === index);
        const data = chunk && chunk.handle !== 0 ? await this.readChunk(path, chunk, inChunk, length) : Buffer.alloc(0);
        yield data.length === length ? data : Buffer.concat([data, Buffer.alloc(length - data.length)]);
        offset += length;
      }
    }
  }

  /** Bytes of one chunk from the first of its replicas that answers (short past its data). */
  async readChunk(
    path: string,
    chunk: { index: number; handle: number; version: number; replicas: string[] },
    offset: number,
    length: number,
  ): Promise<Buffer> {
    const failures: string[] = [];
    for (const address of this.peers.byReadLoad(chunk.replicas, chunk.handle)) {
      try {
        return await this.peers.get(address).read(chunk.handle, chunk.version, offset, length);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
    const why = failures.length ? failures.join('; ') : 'no live replica';
    throw new FsError('EIO', `cannot read chunk ${chunk.index} of ${path}: ${why}`);
  }
}
