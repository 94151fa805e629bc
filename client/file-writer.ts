import { FsError } from '../server/common/fs-error';
import { MAX_CHUNK_IO_BYTES } from '../server/common/proto';
import type { ChunkClientPool } from './chunk-client';
import type { MasterClient } from './master-client';

/** Attempts per piece: a failed replica or a stale lease is retried with a fresh lease. */
const ATTEMPTS = 4;
const RETRY_PAUSE_MS = 500;

/**
 * Writes file data: for each chunk the write touches, the chunk is allocated if missing, a
 * write lease names the primary and the version, and the piece goes to the primary with the
 * other replicas as its chain (the primary orders writes; the call returns when every replica
 * has the piece durably). Afterwards the file size is extended on the master. A write that
 * fails midway leaves the replicas that took it at a version the others lack, so the next
 * lease (which bumps the version on the live ones) makes the missing ones stale.
 */
export class FileWriter {
  private chunkSize = 0;

  constructor(
    private readonly master: MasterClient,
    private readonly peers: ChunkClientPool,
  ) {}

  /** Writes `data` at `offset` of an existing regular file and extends its size to cover it. */
  async write(path: string, offset: number, data: Buffer): Promise<void> {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new FsError('EINVAL', `bad offset ${offset}`);
    let done = 0;
    while (done < data.length) {
      const at = offset + done;
      const chunkSize = await this.chunkSizeOf(path);
      const index = Math.floor(at / chunkSize);
      const inChunk = at - index * chunkSize;
      const piece = data.subarray(done, done + Math.min(MAX_CHUNK_IO_BYTES, chunkSize - inChunk, data.length - done));
      await this.writePiece(path, index, inChunk, piece);
      done += piece.length;
    }
    const end = offset + data.length;
    const { size } = await this.master.getattr(path);
    if (end > size) await this.master.setattr(path, { size: end });
  }

  private async writePiece(path: string, index: number, offset: number, piece: Buffer): Promise<void> {
    let last: Error | null = null;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS * attempt));
      await this.master.allocateChunk(path, index);
      const { chunk } = await this.master.leaseChunk(path, index);
      const [primary, ...chain] = chunk.replicas;
      if (!primary) throw new FsError('EIO', `chunk ${index} of ${path} has no live replica`);
      try {
        await this.peers.get(primary).write(chunk.handle, chunk.version, offset, piece, chain);
        return;
      } catch (err) {
        last = err as Error; // a replica down or a lease overtaken: lease again, which bumps the version
      }
    }
    throw new FsError('EIO', `writing chunk ${index} of ${path} failed ${ATTEMPTS} times: ${last?.message}`);
  }

  /** The cluster's chunk size, learnt once from the master. */
  private async chunkSizeOf(path: string): Promise<number> {
    if (this.chunkSize === 0) this.chunkSize = (await this.master.chunkLocations(path, 0, 1)).chunkSize;
    return this.chunkSize;
  }
}
