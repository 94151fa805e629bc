import { performance } from 'perf_hooks';
import type { ChunkLocation } from '../../generated/chunkfs/master/ChunkLocation';
import { ChunkClientPool } from '../../client/chunk-client';
import { FsError } from '../common/fs-error';
import { MAX_CHUNKS_PER_FILE } from '../common/file-size-limit';
import { logger } from '../common/log';
import type { ChunkserverRegistry } from './chunkserver-registry';
import type { ChunkRef, Inode } from './inode';
import type { MasterState } from './master-state';
import { HOLE, UNWRITTEN } from './namespace';
import { splitPath } from './paths';
import { chooseReplicas } from './placement';
import { checkChunkIndex } from './request-checks';

const log = logger('chunks');

/** Handles reserved per log record: one reservation serves this many allocations. */
const HANDLE_BATCH = 1000;
/** Most chunk locations answered per call. */
const MAX_LOCATIONS = 1000;
/** How long a write lease lasts (ms), and how close to its end it is no longer handed out. */
const LEASE_MS = 60_000;
const LEASE_MARGIN_MS = 5_000;
/**
 * New chunks placed with fewer replicas than their factor are reported at most once in this
 * time (ms), with a count: with a chunkserver down, every new file is one, and a line per file
 * flooded the log (675 lines in 5 s of `cp -a`).
 */
const SHORT_PLACEMENT_REPORT_MS = 10_000;

/** A chunk and the HOST:PORT of its live replicas at its current version (see ChunkLocation). */
export interface PlacedChunk extends ChunkLocation {
  index: number;
  handle: number;
  version: number;
  replicas: string[];
}

export interface Lease {
  /** replicas primary first */
  chunk: PlacedChunk;
  /** performance.now() by which it ends */
  expiresMs: number;
}

/** What allocate answers: a chunk with its write lease (an unwritten one's is its allocation lease). */
export interface Allocation {
  chunk: PlacedChunk;
  /**
   * ms from now until the write lease that comes with the chunk ends: a span, not a time, so
   * that neither end's wall clock (which may step, or differ between machines) matters
   */
  leaseMs: number;
  /** the replicas do not exist yet: the first write creates them */
  createReplicas: boolean;
}

/** The version a new chunk's replicas are created at by its first write. */
const FIRST_VERSION = 1;

export interface ChunkManagerOptions {
  /** bytes per chunk */
  chunkSize: number;
}

/**
 * Files' chunks: allocation, leases and where replicas are. Replica locations are soft state
 * from heartbeats (ChunkserverRegistry); what the log keeps is each file's list of chunk handles
 * and versions.
 *
 * Allocation places the replicas and logs the chunk as UNWRITTEN, without asking the
 * chunkservers anything: the allocator's first write (at version 1, flagged `create`) creates
 * the replica files with the write's own syncs, and the writer confirms it (written(), which
 * logs version 1) before it reports the write done. So the log never names a chunk at a real
 * version whose replicas were never made durable, and a chunk still UNWRITTEN never had a write
 * acknowledged: it reads as a hole, the replication monitor leaves it alone, and when its
 * allocation lease is gone it is simply placed again under a new handle (a new handle, so a
 * first write that half-landed can never be mistaken for the new one's data).
 */
export class ChunkManager {
  /** Handles below this are used; up to ns.lastHandle they are reserved in the log. */
  private nextHandle: number;
  /** Allocations in flight, by "ino index", so concurrent callers share one. */
  private readonly pending = new Map<string, Promise<Allocation>>();
  /** Write leases by chunk handle (not logged: they expire; a new master grants new ones). */
  private readonly leases = new Map<number, HeldLease>();
  private readonly pendingLeases = new Map<string, Promise<Lease>>();
  /** New chunks placed short of their factor since the last report, and when that was. */
  private shortPlacements = 0;
  private shortReportedAt = -Infinity;

  constructor(
    private readonly state: MasterState,
    private readonly chunkservers: ChunkserverRegistry,
    private readonly peers: ChunkClientPool,
    readonly options: ChunkManagerOptions,
  ) {
    // Reserved-but-unused handles of a previous run may exist on chunkservers: skip them all.
    this.nextHandle = state.ns.lastHandle + 1;
  }

  /**
   * The chunk at `index` of the file at `path` with a write lease, placed if it does not exist
   * yet: a writer asks once, whatever the chunk's state. A written chunk comes with its write
   * lease (see lease()). An unwritten chunk comes with its allocation lease (shared by concurrent
   * allocators while it lasts and its replicas' chunkservers live; otherwise the chunk is placed
   * again). `avoid`: chunkservers (addresses) that failed a write to the chunk. An unwritten
   * chunk's placement on any of them is not handed out again, and the new one leaves them out if
   * any other server can take the chunk, even with fewer replicas than the factor (the
   * replication monitor adds the rest later): the master would otherwise keep placing on a
   * killed server until its dead timeout.
   */
  allocate(path: string, index: number, avoid: readonly string[] = []): Promise<Allocation> {
    const file = this.file(path);
    checkChunkIndex(index);
    if (index >= MAX_CHUNKS_PER_FILE) throw new FsError('EFBIG', `chunk ${index} of ${path} is past the largest file (${MAX_CHUNKS_PER_FILE} chunks)`);
    const existing = file.chunks![index];
    if (existing && existing.handle !== HOLE && existing.version !== UNWRITTEN) {
      return this.lease(path, index, existing, avoid).then(({ chunk, expiresMs }) => ({ chunk, leaseMs: msUntil(expiresMs), createReplicas: false }));
    }
    const key = `${file.ino} ${index}`;
    let p = this.pending.get(key);
    if (!p) {
      const held = existing ? this.allocationLease(index, existing.handle) : null;
      // Another writer may have placed it again already, without the failed servers: keep that.
      if (held && !held.chunk.replicas.some((a) => avoid.includes(a))) return Promise.resolve(held);
      p = this.create(path, index, this.state.ns.replicationOf(file), avoid).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }

  /**
   * The first write of an unwritten chunk is on every replica in `replicas` (addresses): logs
   * the chunk at `version`, so it is written from now on. Repeating it is harmless; a chunk
   * placed again since (another handle) is ESTALE: that write went to a chunk no file has.
   */
  async written(path: string, index: number, handle: number, version: number, replicas: string[]): Promise<void> {
    const ref = this.file(path).chunks![checkChunkIndex(index)];
    if (handle === HOLE) throw new FsError('EINVAL', `chunk handle ${HOLE} is a hole's`);
    if (!ref || ref.handle !== handle) throw new FsError('ESTALE', `${path} has no chunk ${handle} at index ${index}: it was placed again`);
    // Confirmed already (a call sent again): answered once that confirmation is durable.
    if (ref.version === version) return this.state.durable();
    if (ref.version !== UNWRITTEN || version !== FIRST_VERSION) {
      throw new FsError('ESTALE', `chunk ${handle} of ${path} is at version ${ref.version}, not unwritten`);
    }
    // Noted before the commit: from then on the chunk is located through these replicas.
    for (const address of replicas) {
      const id = this.chunkservers.idAt(address);
      if (id !== null) this.chunkservers.noteReplica(id, handle, version);
    }
    await this.state.commit({ op: 'setChunkVersion', path, index, handle, version });
  }

  /**
   * A write lease on the written chunk `ref` (at `index` of `path`): the current one while it
   * lasts and every replica it was granted on lives, otherwise a new one, which first moves the
   * live replicas to the next version (so replicas that are down now are stale later) and logs
   * it. Replicas come back primary first. `avoid`: chunkservers a writer failed on under the
   * current lease; a lease naming any of them is not handed out again, and the new grant leaves
   * them out (a killed server looks alive until its dead timeout; a full one answers).
   */
  private lease(path: string, index: number, ref: ChunkRef, avoid: readonly string[]): Promise<Lease> {
    const held = this.leases.get(ref.handle);
    if (held && held.expiresMs > performance.now() + LEASE_MARGIN_MS) {
      const loc = this.location(index, ref.handle, ref.version);
      const granted = held.replicas.map((id) => this.chunkservers.addressOf(id));
      // Only whole: a replica dead since the grant, or failed by a writer, misses the writes
      // made without it, so a new grant must move the others past its version.
      if (loc.version === held.version && granted.every((a) => loc.replicas.includes(a) && !avoid.includes(a))) {
        return Promise.resolve({ chunk: { ...loc, replicas: granted }, expiresMs: held.expiresMs });
      }
    }
    const key = `lease ${ref.handle}`;
    let p = this.pendingLeases.get(key);
    if (!p) {
      p = this.grant(path, index, ref.handle, ref.version, avoid).finally(() => this.pendingLeases.delete(key));
      this.pendingLeases.set(key, p);
    }
    return p;
  }

  /**
   * A new lease: the live replicas, less those a writer failed on (`avoid`) while others remain,
   * move to a new version. An avoided one (full, say, or dying) is left stale, and the
   * replication monitor puts the chunk back elsewhere, as HDFS's pipeline recovery does.
   */
  private async grant(path: string, index: number, handle: number, recorded: number, avoid: readonly string[]): Promise<Lease> {
    const { ino } = this.file(path);
    await this.chunkservers.starting();
    const { live, version } = this.chunkservers.replicasOf(handle, recorded);
    if (live.length === 0) throw new FsError('EIO', `chunk ${handle} of ${path} has no live replica`);
    const kept = live.filter((id) => !avoid.includes(this.chunkservers.addressOf(id)));
    const { moved, to } = await this.moveVersion(path, handle, kept.length > 0 ? kept : live, version);
    // Noted before the commit: from the moment the log says `to`, replicas at older versions
    // are stale to the replication monitor, and these ones must not look so.
    for (const id of moved) this.chunkservers.noteReplica(id, handle, to);
    this.state.ns.expectIno(path, ino); // no rename came between
    await this.state.commit({ op: 'setChunkVersion', path, index, handle, version: to });
    const expiresMs = performance.now() + LEASE_MS;
    this.leases.set(handle, { replicas: moved, version: to, expiresMs });
    const replicas = moved.map((id) => this.chunkservers.addressOf(id));
    return { chunk: { index, handle, version: to, replicas }, expiresMs };
  }

  /**
   * Moves the replicas on `ids` of a chunk at `version` to a newer version; answers those that
   * took it. A replica that did not answer may still take the version later: its request can
   * wait in a socket while the process is stopped, or be applied after its answer was lost. It
   * would then claim the lease's version without the writes made under the lease. So whenever
   * one fails, the others move on once more, until every one asked answers: a request arriving
   * late leaves the failed replica at an older version than the one logged, which is stale.
   */
  private async moveVersion(path: string, handle: number, ids: string[], version: number): Promise<{ moved: string[]; to: number }> {
    for (let asked = ids, from = version; ; from++) {
      const to = from + 1;
      const answered = await Promise.all(asked.map(async (id) => {
        try {
          await this.peers.get(this.chunkservers.addressOf(id)).setVersion(handle, to);
          return id;
        } catch (err) {
          log.warn(`chunk ${handle}: version ${to} not set on ${this.chunkservers.addressOf(id)}: ${(err as Error).message}`);
          return null;
        }
      }));
      const moved = answered.filter((id): id is string => id !== null);
      if (moved.length === 0) throw new FsError('EIO', `chunk ${handle} of ${path}: no replica took version ${to}`);
      if (moved.length === asked.length) return { moved, to };
      asked = moved;
    }
  }

  /** Ends the write lease on a chunk (its writer is done); a release of an older lease is ignored. */
  release(path: string, index: number, version: number): void {
    const ref = this.file(path).chunks![checkChunkIndex(index)];
    if (!ref || ref.handle === HOLE) return;
    if (this.leases.get(ref.handle)?.version === version) this.leases.delete(ref.handle);
  }

  /** A write lease is outstanding: copying the chunk now could miss a write. */
  isLeased(handle: number): boolean {
    if (this.pendingLeases.has(`lease ${handle}`)) return true; // replicas are changing version now
    const held = this.leases.get(handle);
    return held !== undefined && held.expiresMs > performance.now();
  }

  /** Up to `count` chunks from `first` on (holes included, with handle 0). */
  async locations(path: string, first: number, count: number): Promise<PlacedChunk[]> {
    checkChunkIndex(first);
    const placed = (): PlacedChunk[] => {
      const chunks = this.file(path).chunks!; // again after a wait: the file may have changed
      const end = Math.min(chunks.length, first + Math.min(Math.max(count, 1), MAX_LOCATIONS));
      const out: PlacedChunk[] = [];
      for (let i = first; i < end; i++) out.push(this.location(i, chunks[i].handle, chunks[i].version));
      return out;
    };
    // A reader needs one replica: it waits for the restart's reports only for a chunk with none yet.
    const starting = this.chunkservers.starting();
    if (starting && placed().some((c) => c.handle !== HOLE && c.replicas.length === 0)) await starting;
    return placed();
  }

  /**
   * A new chunk with `replication` replicas (fewer when fewer chunkservers can take one), logged
   * unwritten and leased to its allocator: no version bump is needed at the first version (no
   * replica can have missed a write yet).
   */
  private async create(path: string, index: number, replication: number, avoid: readonly string[] = []): Promise<Allocation> {
    const { ino } = this.file(path);
    await this.chunkservers.starting();
    const all = this.chunkservers.list();
    const place = (from: typeof all) => chooseReplicas(from, replication, { minFreeBytes: this.options.chunkSize });
    // Avoiding is a preference: with nowhere else to go (one chunkserver, or a writer that has
    // named them all), the failed servers are tried again rather than answering ENOSPC.
    const preferred = avoid.length > 0 ? place(all.filter((cs) => !avoid.includes(cs.address))) : [];
    const targets = preferred.length > 0 ? preferred : place(all);
    if (targets.length === 0) throw new FsError('ENOSPC', 'no live chunkserver with room for a new chunk');
    const handle = await this.takeHandle();
    this.state.ns.expectIno(path, ino); // no rename came between
    await this.state.commit({ op: 'addChunk', path, index, handle, version: UNWRITTEN });
    if (targets.length < replication) this.reportShort(`chunk ${handle} of ${path} has ${targets.length} of ${replication} replicas`);
    const planned = targets.map((cs) => cs.id);
    this.leases.set(handle, { replicas: planned, version: FIRST_VERSION, expiresMs: performance.now() + LEASE_MS });
    return { chunk: { index, handle, version: FIRST_VERSION, replicas: targets.map((cs) => cs.address) }, leaseMs: LEASE_MS, createReplicas: true };
  }

  /** A new chunk placed short of its factor (`latest` says which): see SHORT_PLACEMENT_REPORT_MS. */
  private reportShort(latest: string): void {
    this.shortPlacements++;
    const now = performance.now();
    if (now - this.shortReportedAt < SHORT_PLACEMENT_REPORT_MS) return;
    const more = this.shortPlacements - 1;
    log.warn(more === 0 ? latest : `${latest}; ${more} more new chunks placed short of their factor since the last report`);
    this.shortPlacements = 0;
    this.shortReportedAt = now;
  }

  /** The allocation lease of an unwritten chunk, while it lasts and its chunkservers live. */
  private allocationLease(index: number, handle: number): Allocation | null {
    const held = this.leases.get(handle);
    if (!held || held.expiresMs <= performance.now() + LEASE_MARGIN_MS) return null;
    const alive = new Set(this.chunkservers.list().filter((cs) => cs.alive).map((cs) => cs.id));
    if (!held.replicas.every((id) => alive.has(id))) return null;
    const replicas = held.replicas.map((id) => this.chunkservers.addressOf(id));
    return { chunk: { index, handle, version: held.version, replicas }, leaseMs: msUntil(held.expiresMs), createReplicas: true };
  }

  /** A fresh handle, reserving a new batch in the log when the reserved range is used up. */
  private async takeHandle(): Promise<number> {
    while (this.nextHandle > this.state.ns.lastHandle) {
      const upTo = this.nextHandle + HANDLE_BATCH - 1;
      await this.state.commit({ op: 'reserveHandles', upTo });
    }
    return this.nextHandle++;
  }

  /**
   * Where the chunk's current version lives (a newer version than logged counts: see
   * replicasOf). An unwritten chunk is a hole: whatever a first write not yet confirmed left on
   * replicas was never acknowledged.
   */
  private location(index: number, handle: number, recorded: number): PlacedChunk {
    if (handle === HOLE || recorded === UNWRITTEN) return { index, handle: HOLE, version: 0, replicas: [] };
    const { live, version } = this.chunkservers.replicasOf(handle, recorded);
    return { index, handle, version, replicas: live.map((id) => this.chunkservers.addressOf(id)) };
  }

  private file(path: string): Inode {
    const node = this.state.ns.resolve(splitPath(path));
    if (node.isDir) throw new FsError('EISDIR', `is a directory: ${path}`);
    if (!node.isFile) throw new FsError('EINVAL', `not a regular file: ${path}`);
    return node;
  }
}

interface HeldLease {
  /** The chunkservers (ids) it was granted on, primary first; an unwritten chunk's first write creates replicas there. */
  replicas: string[];
  version: number;
  /** performance.now() by which it ends */
  expiresMs: number;
}

/** Whole ms from now until `at` (a performance.now() time), 0 once it has passed. */
function msUntil(at: number): number {
  return Math.max(0, Math.floor(at - performance.now()));
}
