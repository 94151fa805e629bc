import type { ChunkLocation } from '../../generated/chunkfs/master/ChunkLocation';
import { ChunkClientPool } from '../../client/chunk-client';
import { FsError } from '../common/fs-error';
import { logger } from '../common/log';
import type { ChunkserverRegistry, ChunkserverView } from './chunkserver-registry';
import type { Inode } from './inode';
import type { MasterState } from './master-state';
import { HOLE } from './namespace';
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
  /** ms since the epoch */
  expiresMs: number;
}

export interface ChunkManagerOptions {
  /** bytes per chunk */
  chunkSize: number;
}

/**
 * Files' chunks: allocation (placement, creation on chunkservers, then the log record) and
 * where replicas are. Replica locations are soft state from heartbeats (ChunkserverRegistry);
 * what the log keeps is each file's list of chunk handles and versions.
 */
export class ChunkManager {
  /** Handles below this are used; up to ns.lastHandle they are reserved in the log. */
  private nextHandle: number;
  /** Allocations in flight, by "ino index", so concurrent callers share one. */
  private readonly pending = new Map<string, Promise<PlacedChunk>>();
  /** Write leases by chunk handle (not logged: they expire; a new master grants new ones). */
  private readonly leases = new Map<number, { primary: string; version: number; expiresMs: number }>();
  private readonly pendingLeases = new Map<string, Promise<Lease>>();
  private readonly creating = new Set<number>();

  constructor(
    private readonly state: MasterState,
    private readonly chunkservers: ChunkserverRegistry,
    private readonly peers: ChunkClientPool,
    readonly options: ChunkManagerOptions,
  ) {
    // Reserved-but-unused handles of a previous run may exist on chunkservers: skip them all.
    this.nextHandle = state.ns.lastHandle + 1;
  }

  /** The chunk at `index` of the file at `path`, created if it does not exist yet. */
  allocate(path: string, index: number): Promise<PlacedChunk> {
    const file = this.file(path);
    checkChunkIndex(index);
    const existing = file.chunks![index];
    if (existing && existing.handle !== HOLE) return Promise.resolve(this.location(index, existing.handle, existing.version));
    const key = `${file.ino} ${index}`;
    let p = this.pending.get(key);
    if (!p) {
      p = this.create(path, index, this.state.ns.replicationOf(file)).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }

  /**
   * A write lease on an existing chunk: the current one while it lasts and its primary lives,
   * otherwise a new one, which first moves the live replicas to the next version (so replicas
   * that are down now are stale later) and logs it. Replicas come back primary first.
   */
  lease(path: string, index: number): Promise<Lease> {
    const file = this.file(path);
    checkChunkIndex(index);
    const ref = file.chunks![index];
    if (!ref || ref.handle === HOLE) throw new FsError('ENOENT', `${path} has no chunk ${index}: allocate it first`);
    const held = this.leases.get(ref.handle);
    if (held && held.expiresMs > Date.now() + LEASE_MARGIN_MS) {
      const loc = this.location(index, ref.handle, ref.version);
      const primary = this.chunkservers.addressOf(held.primary);
      if (loc.version === held.version && loc.replicas.includes(primary)) {
        return Promise.resolve({ chunk: { ...loc, replicas: primaryFirst(loc.replicas, primary) }, expiresMs: held.expiresMs });
      }
    }
    const key = `lease ${ref.handle}`;
    let p = this.pendingLeases.get(key);
    if (!p) {
      p = this.grant(path, index, ref.handle, ref.version).finally(() => this.pendingLeases.delete(key));
      this.pendingLeases.set(key, p);
    }
    return p;
  }

  private async grant(path: string, index: number, handle: number, recorded: number): Promise<Lease> {
    const { live, version } = this.chunkservers.replicasOf(handle, recorded);
    if (live.length === 0) throw new FsError('EIO', `chunk ${handle} of ${path} has no live replica`);
    const next = version + 1;
    const moved = await Promise.all(live.map(async (id) => {
      try {
        await this.peers.get(this.chunkservers.addressOf(id)).setVersion(handle, next);
        return id;
      } catch (err) {
        log.warn(`chunk ${handle}: version ${next} not set on ${this.chunkservers.addressOf(id)}: ${(err as Error).message}`);
        return null;
      }
    }));
    const ok = moved.filter((id): id is string => id !== null);
    if (ok.length === 0) throw new FsError('EIO', `chunk ${handle} of ${path}: no replica took version ${next}`);
    // Noted before the commit: from the moment the log says `next`, replicas at the old version
    // are stale to the replication monitor, and these ones must not look so.
    for (const id of ok) this.chunkservers.noteReplica(id, handle, next);
    await this.state.commit({ op: 'setChunkVersion', path, index, handle, version: next });
    const expiresMs = Date.now() + LEASE_MS;
    this.leases.set(handle, { primary: ok[0], version: next, expiresMs });
    const replicas = ok.map((id) => this.chunkservers.addressOf(id));
    return { chunk: { index, handle, version: next, replicas }, expiresMs };
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
    return held !== undefined && held.expiresMs > Date.now();
  }

  /** Handles being allocated: their replicas exist before the log names them. */
  isBeingCreated(handle: number): boolean {
    return this.creating.has(handle);
  }

  /** Up to `count` chunks from `first` on (holes included, with handle 0). */
  locations(path: string, first: number, count: number): PlacedChunk[] {
    const chunks = this.file(path).chunks!;
    checkChunkIndex(first);
    const end = Math.min(chunks.length, first + Math.min(Math.max(count, 1), MAX_LOCATIONS));
    const out: PlacedChunk[] = [];
    for (let i = first; i < end; i++) out.push(this.location(i, chunks[i].handle, chunks[i].version));
    return out;
  }

  /** A new chunk with `replication` replicas (fewer when fewer chunkservers can take one). */
  private async create(path: string, index: number, replication: number): Promise<PlacedChunk> {
    const targets = chooseReplicas(this.chunkservers.list(), replication, { minFreeBytes: this.options.chunkSize });
    if (targets.length === 0) throw new FsError('ENOSPC', 'no live chunkserver with room for a new chunk');
    const handle = await this.takeHandle();
    this.creating.add(handle);
    try {
      return await this.createReplicas(path, index, handle, targets, replication);
    } finally {
      this.creating.delete(handle);
    }
  }

  private async createReplicas(
    path: string, index: number, handle: number, targets: ChunkserverView[], replication: number,
  ): Promise<PlacedChunk> {
    const version = 1;
    const made = await Promise.all(targets.map(async (cs) => {
      try {
        await this.peers.get(cs.address).create(handle, version);
        return cs;
      } catch (err) {
        log.warn(`creating chunk ${handle} on ${cs.address} failed: ${(err as Error).message}`);
        return null;
      }
    }));
    const ok = made.filter((cs) => cs !== null);
    if (ok.length === 0) throw new FsError('EIO', `chunk ${handle} could not be created on any of ${targets.map((t) => t.address).join(', ')}`);
    for (const cs of ok) this.chunkservers.noteReplica(cs.id, handle, version);
    await this.state.commit({ op: 'addChunk', path, index, handle, version });
    if (ok.length < replication) log.warn(`chunk ${handle} of ${path} has ${ok.length} of ${replication} replicas`);
    // Whoever allocates a chunk writes it next: a lease at the first version needs no version
    // bump (no replica can have missed a write yet), which saves a round and a log record per
    // new chunk, most of the cost of a small file.
    this.leases.set(handle, { primary: ok[0].id, version, expiresMs: Date.now() + LEASE_MS });
    return this.location(index, handle, version);
  }

  /** A fresh handle, reserving a new batch in the log when the reserved range is used up. */
  private async takeHandle(): Promise<number> {
    while (this.nextHandle > this.state.ns.lastHandle) {
      const upTo = this.nextHandle + HANDLE_BATCH - 1;
      await this.state.commit({ op: 'reserveHandles', upTo });
    }
    return this.nextHandle++;
  }

  /** Where the chunk's current version lives (a newer version than logged counts: see replicasOf). */
  private location(index: number, handle: number, recorded: number): PlacedChunk {
    if (handle === HOLE) return { index, handle, version: 0, replicas: [] };
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

function primaryFirst(replicas: string[], primary: string): string[] {
  return [primary, ...replicas.filter((r) => r !== primary)];
}
