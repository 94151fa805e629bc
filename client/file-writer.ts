import { FsError } from '../server/common/fs-error';
import { MAX_WRITE_RUNS } from '../server/common/data-stream-protocol';
import { MAX_CHUNK_IO_BYTES } from '../server/common/proto';
import { failedReplica, type ChunkClientPool } from './chunk-client';
import { leaseRuns, type ChunkAllocation, type LeaseEnd, type MasterClient } from './master-client';
import { byCurrentName, ofSameFile, type Relocatable } from './fs/renamed-retry';

/** Errors that mean the replica itself failed (down, hung, full), not the request. */
const REPLICA_FAULTS = new Set(['EIO', 'ETIMEDOUT', 'ENOSPC']);
/** Attempts per piece: a failed replica or a stale lease is retried with a fresh lease. */
const ATTEMPTS = 4;
const RETRY_PAUSE_MS = 500;
/** A lease this close to its end (ms) is renewed before use. */
const LEASE_MARGIN_MS = 10_000;

/**
 * The file a writer writes: a path, or an open file, whose name a rename may change while it is
 * being written. An open file's calls carry its inode, so that the master refuses (ESTALE) a
 * call whose path names another file by then; the file is then found again by its inode
 * (byCurrentName) and the call made by its name now.
 */
export type FileTarget = string | OpenTarget;

/** An open file: its name now (a rename changes it) and its inode, which the master checks the name against. */
export interface OpenTarget extends Relocatable {
  readonly path: string;
  readonly ino: number;
}

const pathOf = (file: FileTarget): string => (typeof file === 'string' ? file : file.path);
const inoOf = (file: FileTarget): number | undefined => (typeof file === 'string' ? undefined : file.ino);
/** How a file's chunks are keyed in FileWriter.leases: `${index} ${keyOf(file)}`. */
const keyOf = (file: FileTarget): string => (typeof file === 'string' ? file : `#${file.ino}`);

/** A new chunk's confirmation to the master, under the key its lease has in FileWriter.leases. */
interface Confirmation {
  key: string;
  done: Promise<void>;
}

interface HeldLease {
  handle: number;
  version: number;
  /** primary first */
  replicas: string[];
  ends: LeaseEnd;
  /** The chunk is unwritten: writes create its replicas until one succeeds and is confirmed. */
  create: boolean;
  /** The file it is of (its name now, for handing the lease back). */
  file: FileTarget;
}

/**
 * Writes file data: for each chunk the write touches, allocateChunk places it if missing and
 * answers a write lease naming the primary and the version, and the piece goes to the primary with the
 * other replicas as its chain (the primary orders writes; the call returns when every replica
 * has the piece durably). Leases are kept for the writer's life (one version bump per chunk, not
 * per write) and released by close(), so the master may re-replicate the chunks again. A write
 * that fails midway is retried under a new lease, whose version bump makes replicas that missed
 * it stale.
 *
 * A new chunk comes from allocateChunk with its lease and no replicas yet: its first write
 * creates them (the `create` flag), and the master is told (chunkWritten, in parallel with the
 * size update) before write() resolves; until then the chunk reads as a hole.
 */
export class FileWriter {
  private chunkSize: number;
  private readonly leases = new Map<string, Promise<HeldLease>>();
  /** Per chunk (as keyed in `leases`): chunkservers that failed a write to it, for the next lease. */
  private readonly avoid = new Map<string, string[]>();

  /** `chunkSize`: the cluster's, when the caller knows it (saves asking the master). */
  constructor(
    private readonly master: MasterClient,
    private readonly peers: ChunkClientPool,
    chunkSize = 0,
  ) {
    this.chunkSize = chunkSize;
  }

  /**
   * Writes `data` at `offset` of an existing regular file and extends its size to cover it.
   * `recordEnd`: how the new end is recorded, when the caller keeps track of the size (an open
   * file does; it answers undefined when nothing needs recording); by default a grow-only size
   * update (which also sets mtime). Resolves only once every replica has the
   * bytes durably (and the size is logged): there is no write-behind buffer here, so nothing
   * is left for flush() to do.
   */
  async write(file: FileTarget, offset: number, data: Buffer, recordEnd?: (end: number) => Promise<unknown> | undefined): Promise<void> {
    return this.writeRuns(file, [{ offset, data }], recordEnd);
  }

  /**
   * write() of several runs of the file (in offset order, disjoint: a flushed buffer), the
   * runs that fall in one chunk sent as one write, synced once on each replica. The end of the
   * last is recorded once every run is durable.
   */
  async writeRuns(file: FileTarget, runs: Array<{ offset: number; data: Buffer }>, recordEnd?: (end: number) => Promise<unknown> | undefined): Promise<void> {
    for (const { offset } of runs) if (!Number.isSafeInteger(offset) || offset < 0) throw new FsError('EINVAL', `bad offset ${offset}`);
    const last = runs[runs.length - 1];
    if (!last) return;
    for (let attempt = 1; ; attempt++) {
      const confirmations: Confirmation[] = [];
      for (const batch of batchesOf(runs, await this.chunkSizeOf(file))) await this.writeBatch(file, batch, confirmations);
      const end = last.offset + last.data.length;
      const grow = recordEnd ?? ((e: number) => this.master.setattr(pathOf(file), { size: e, growOnly: true }, inoOf(file)));
      // Issued together, they share a session batch and the master's group commit.
      const [outcomes, [recorded]] = await Promise.all([
        Promise.allSettled(confirmations.map((c) => c.done)),
        Promise.allSettled([grow(end)]),
      ]);
      const failed = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [{ key: confirmations[i].key, reason: o.reason as unknown }] : []));
      // Whatever the failure, the master may still count the chunk unwritten (a hole): its
      // lease goes, so that the next write to it asks again and creates and confirms it anew
      // (kept, its create flag spent, later writes would land in replicas no file reads).
      for (const f of failed) this.leases.delete(f.key);
      if (recorded.status === 'rejected') throw recorded.reason;
      if (failed.length === 0) return;
      // ESTALE: the new chunk is no longer the file's (another client truncated the file since
      // it was allocated, or it was placed again), so the bytes went to a chunk no file has; or
      // the file was renamed since the confirmation was sent. They are written again, once,
      // under fresh allocations.
      if (attempt > 1 || !failed.every((f) => f.reason instanceof FsError && f.reason.code === 'ESTALE')) throw failed[0].reason;
    }
  }

  /**
   * truncate(2): a shrink first cuts the replicas of the chunk the new end falls in (under a
   * lease, through the chain, so it is ordered with writes), then sets the size, which drops
   * the chunks wholly past it; so a later grow reads zeros, never the old bytes. A grow only
   * sets the size: holes and unwritten parts of chunks read as zeros. An open file's name that
   * names another file now, or none, is ESTALE.
   */
  async truncate(file: FileTarget, size: number): Promise<void> {
    if (!Number.isSafeInteger(size) || size < 0) throw new FsError('EINVAL', `bad size ${size}`);
    const { size: old } = await (typeof file === 'string' ? this.master.getattr(file) : ofSameFile(file, this.master.getattr(file.path)));
    if (size < old) {
      const chunkSize = await this.chunkSizeOf(file);
      const index = Math.floor(size / chunkSize);
      const inChunk = size - index * chunkSize;
      const [chunk] = (await this.master.chunkLocations(pathOf(file), index, 1, inoOf(file))).chunks;
      if (inChunk > 0 && chunk && chunk.index === index && chunk.handle !== 0) {
        await this.withLease(file, index, (lease, primary, chain) =>
          this.peers.get(primary).truncate(lease.handle, lease.version, inChunk, chain));
      }
    }
    await this.master.setattr(pathOf(file), { size }, inoOf(file));
    // Chunks wholly past the end are gone: leases on them must not be used for new writes.
    const chunkSize = await this.chunkSizeOf(file);
    await this.release((key) => {
      const [id, index] = splitKey(key);
      return id === keyOf(file) && index >= Math.ceil(size / chunkSize);
    });
  }

  /**
   * Resolves once everything written so far is durable on every replica: at once, since
   * write() and truncate() resolve only then (fsync and flush in the mount call this).
   */
  flush(): Promise<void> {
    return Promise.resolve();
  }

  /** Releases every lease this writer holds (best effort: unreleased leases simply expire). */
  close(): Promise<void> {
    return this.release(() => true);
  }

  private async release(which: (key: string) => boolean): Promise<void> {
    const held = [...this.leases].filter(([key]) => which(key));
    for (const [key] of held) this.leases.delete(key);
    for (const key of [...this.avoid.keys()].filter(which)) this.avoid.delete(key);
    await Promise.all(held.map(async ([key, entry]) => {
      const lease = await entry.catch(() => null);
      if (lease) await this.master.releaseLease(pathOf(lease.file), splitKey(key)[1], lease.version, inoOf(lease.file)).catch(() => undefined);
    }));
  }

  /**
   * Writes one piece of a chunk; for the first write of a new chunk, adds the confirmation to
   * the master to `confirmations`, started but not awaited: the caller sends the size record
   * beside it and awaits both. (Not returned: an async function returning a promise would wait
   * for it, and the size would follow the confirmation's round trip instead of sharing it.)
   */
  private async writeBatch(file: FileTarget, { index, pieces }: Batch, confirmations: Confirmation[]): Promise<void> {
    await this.withLease(file, index, async (lease, primary, chain) => {
      const peer = this.peers.get(primary);
      let rest = pieces;
      if (lease.create) {
        // A new chunk's first write creates its replicas: one run (see data-stream-protocol.ts).
        await peer.write(lease.handle, lease.version, rest[0].inChunk, rest[0].data, chain, true);
        rest = rest.slice(1);
        lease.create = false; // every replica has the chunk now
        const chunk = { index, handle: lease.handle, version: lease.version, replicas: lease.replicas };
        const confirm = () => this.master.chunkWritten(pathOf(file), chunk, inoOf(file));
        const done = typeof file === 'string' ? confirm() : byCurrentName(file, confirm);
        done.catch(() => undefined); // awaited by writeRuns()
        confirmations.push({ key: `${index} ${keyOf(file)}`, done });
      }
      if (rest.length > 0) {
        await peer.writeRuns(lease.handle, lease.version, rest.map((p) => ({ offset: p.inChunk, length: p.data.length })), rest.map((p) => p.data), chain);
      }
    });
  }

  /** Runs a chunk mutation under a lease, retrying under a fresh lease when it fails. */
  private async withLease(
    file: FileTarget,
    index: number,
    mutate: (lease: HeldLease, primary: string, chain: string[]) => Promise<void>,
  ): Promise<void> {
    const key = `${index} ${keyOf(file)}`;
    let last: Error | null = null;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS * attempt));
      let held;
      try {
        held = await this.lease(file, index, key);
      } catch (err) {
        // Renamed since the call went out (ESTALE): asked again by the name it has now.
        if (!(err instanceof FsError && err.code === 'ESTALE' && typeof file !== 'string')) throw err;
        await file.relocate();
        last = err;
        continue;
      }
      const { entry, lease } = held;
      const [primary, ...chain] = lease.replicas;
      if (!primary) throw new FsError('EIO', `chunk ${index} of ${pathOf(file)} has no live replica`);
      try {
        await mutate(lease, primary, chain);
        this.avoid.delete(key);
        return;
      } catch (err) {
        last = err as Error; // a replica down or the lease overtaken: lease again, which bumps the version
        if (this.leases.get(key) === entry) this.leases.delete(key); // unless another write did already
        // A replica failed: a new chunk is placed again without it, an existing one leased anew
        // without it. Only its own faults count: ESTALE, say, means another writer's lease moved
        // the version (avoiding for that would shrink a shared chunk to one replica).
        const failed = err instanceof FsError && REPLICA_FAULTS.has(err.code) ? failedReplica(err) : null;
        const avoid = this.avoid.get(key) ?? [];
        if (failed !== null && lease.replicas.includes(failed) && !avoid.includes(failed)) this.avoid.set(key, [...avoid, failed]);
      }
    }
    // Every replica full is the cluster full: the writer's program is told so, not "I/O error".
    const code = last instanceof FsError && last.code === 'ENOSPC' ? 'ENOSPC' : 'EIO';
    throw new FsError(code, `changing chunk ${index} of ${pathOf(file)} failed ${ATTEMPTS} times: ${last?.message}`);
  }

  /**
   * The lease on a chunk, asked for once however many writes to the chunk want it at the same
   * time (an open file has two flushes in flight): a second request would bump the version
   * under the first write.
   */
  private async lease(file: FileTarget, index: number, key: string): Promise<{ entry: Promise<HeldLease>; lease: HeldLease }> {
    const held = this.leases.get(key);
    if (held) {
      const lease = await held.catch(() => null);
      if (lease && leaseRuns(lease.ends, LEASE_MARGIN_MS)) return { entry: held, lease };
      if (this.leases.get(key) !== held) return this.lease(file, index, key); // renewed meanwhile
    }
    const entry = this.askLease(file, index, this.avoid.get(key) ?? []);
    this.leases.set(key, entry);
    entry.catch(() => {
      if (this.leases.get(key) === entry) this.leases.delete(key);
    });
    return { entry, lease: await entry };
  }

  /**
   * Takes a chunk allocated on this writer's behalf (a create that came with its first chunk)
   * as if this writer had asked for it, unless it holds that chunk's lease already.
   */
  adoptAllocation(file: FileTarget, allocated: ChunkAllocation): void {
    const key = `${allocated.chunk.index} ${keyOf(file)}`;
    if (this.chunkSize === 0) this.chunkSize = allocated.chunkSize;
    if (this.leases.has(key)) return;
    const entry = (async () => leaseOf(allocated, file))();
    this.leases.set(key, entry);
    entry.catch(() => {
      if (this.leases.get(key) === entry) this.leases.delete(key);
    });
  }

  private async askLease(file: FileTarget, index: number, avoid: string[]): Promise<HeldLease> {
    return leaseOf(await this.master.allocateChunk(pathOf(file), index, avoid, inoOf(file)), file);
  }

  /** The cluster's chunk size, learnt once from the master. */
  private async chunkSizeOf(file: FileTarget): Promise<number> {
    if (this.chunkSize === 0) this.chunkSize = (await this.master.chunkLocations(pathOf(file), 0, 1, inoOf(file))).chunkSize;
    return this.chunkSize;
  }
}

/** The lease that comes with a chunk's allocation (refused without one: writing needs the primary's order). */
function leaseOf({ chunk, leaseEnds, createReplicas }: ChunkAllocation, file: FileTarget): HeldLease {
  if (!leaseEnds) throw new FsError('EIO', `the master answered chunk ${chunk.handle} without a write lease`);
  return { handle: chunk.handle, version: chunk.version, replicas: chunk.replicas, ends: leaseEnds, create: createReplicas, file };
}

/** A piece of a run that lies in one chunk: its offset there and its bytes. */
interface Piece {
  inChunk: number;
  data: Buffer;
}

/** Pieces of one chunk written as one request. */
interface Batch {
  index: number;
  pieces: Piece[];
}

/**
 * `runs` (in offset order, disjoint) cut at chunk boundaries and at MAX_CHUNK_IO_BYTES, the
 * pieces that follow each other in one chunk batched up to MAX_CHUNK_IO_BYTES and MAX_WRITE_RUNS.
 */
function batchesOf(runs: Array<{ offset: number; data: Buffer }>, chunkSize: number): Batch[] {
  const batches: Batch[] = [];
  let bytes = 0;
  for (const { offset, data } of runs) {
    for (let done = 0; done < data.length;) {
      const at = offset + done;
      const index = Math.floor(at / chunkSize);
      const inChunk = at - index * chunkSize;
      const piece = { inChunk, data: data.subarray(done, done + Math.min(MAX_CHUNK_IO_BYTES, chunkSize - inChunk, data.length - done)) };
      const batch = batches[batches.length - 1];
      if (batch && batch.index === index && bytes + piece.data.length <= MAX_CHUNK_IO_BYTES && batch.pieces.length < MAX_WRITE_RUNS) {
        batch.pieces.push(piece);
        bytes += piece.data.length;
      } else {
        batches.push({ index, pieces: [piece] });
        bytes = piece.data.length;
      }
      done += piece.data.length;
    }
  }
  return batches;
}

function splitKey(key: string): [string, number] {
  const space = key.indexOf(' ');
  return [key.slice(space + 1), Number(key.slice(0, space))];
}
