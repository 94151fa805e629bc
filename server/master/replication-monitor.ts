import { performance } from 'perf_hooks';
import type { ChunkClientPool } from '../../client/chunk-client';
import type { FsError } from '../common/fs-error';
import { logger } from '../common/log';
import type { ChunkManager } from './chunk-manager';
import type { ChunkserverRegistry, ChunkserverView } from './chunkserver-registry';
import type { Decommissioner } from './decommission';
import type { MasterState } from './master-state';
import { HOLE, UNWRITTEN } from './namespace';
import { chooseReplicas } from './placement';

const log = logger('replication');
/** Replicas one chunkserver is told to delete per pass (HDFS caps its invalidations per heartbeat alike). */
const MAX_DELETES_PER_CALL = 1000;
/**
 * The share of the master's time the passes take at most. A pass looks at every chunk (about
 * 1.3 µs each: 20 ms over 16,000 chunks): passes a second apart over a million chunks would leave
 * the master no time for its clients, so a pass that took T ms is followed by one no sooner
 * than T / MAX_PASS_SHARE ms after it began.
 */
const MAX_PASS_SHARE = 0.1;
/** Waiting chunks looked at when a copy ends (a pass looks at all of them). */
const LOOKS_PER_COPY_END = 1000;

export interface ReplicationOptions {
  /** bytes per chunk: a copy target needs this much free */
  chunkSize: number;
  /** how often the whole picture is checked (ms) */
  intervalMs: number;
  /** copies in flight at once, in all */
  maxCopies: number;
  /** copies in flight at once with one chunkserver as source or target */
  maxCopiesPerServer: number;
  /**
   * Nothing is done for this long after start (ms): until every live chunkserver has sent its
   * full report, chunks would look under-replicated (HDFS's safe mode, in short).
   */
  startAfterMs: number;
  /**
   * A replica no file refers to any more is deleted once it has been so for this long (ms):
   * reclamation is lazy, as in GFS. Deleting a removed tree's chunks at once (two file
   * removals per replica, journalled by the chunkservers' file system) slowed the removals
   * themselves and whatever ran next on the same disks by half. A server short of space has
   * its orphans deleted at once (see ReplicationMonitor.underPressure).
   */
  gcDelayMs: number;
}

interface Need {
  handle: number;
  version: number;
  /** usable replicas, the copy sources (ChunkReplicas.live) */
  live: string[];
  /** replicas counting towards the factor (not on decommissioning servers) */
  counted: number;
  /** the factor of the chunk's file */
  replication: number;
}

/** A replica to delete: [server id, handle, why]. */
type Doomed = [string, number, string];

/** What the chunk's file wants of it: the current version, and how many replicas. */
interface Wanted {
  version: number;
  replication: number;
}

/**
 * Keeps every chunk at its file's replication factor, like HDFS's replication monitor: each pass
 * walks the files' chunks against the replicas the chunkservers report and
 *  - copies under-replicated chunks to new chunkservers, most endangered first (one live
 *    replica before two), with bounded copies in flight (in all and per chunkserver), never
 *    while a write lease is out (a copy could miss a write); replicas on decommissioning
 *    servers do not count, so their chunks are copied away (they serve as sources);
 *  - marks drained decommissioning servers decommissioned (decommission.ts);
 *  - deletes replicas beyond the factor (from the fullest chunkservers), stale replicas (an
 *    older version: they missed writes), orphans (no file refers to them any more) and
 *    corrupt replicas once the chunk has its good replicas again.
 * Commands go to chunkservers as direct RPCs.
 */
export class ReplicationMonitor {
  /** Time the passes spent looking at every chunk, in all (ms; for tests). */
  lookingMs = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly copying = new Map<number, Promise<void>>();
  /** chunkserver id -> copies it takes part in now */
  private readonly busy = new Map<string, number>();
  /**
   * The chunks the last pass found short, most endangered first, that no copy slot was free
   * for (null: started since, or no longer to be started). A copy that ends starts the next of
   * them at once: waiting for the next pass held re-replication of small chunks to a few per
   * second (a dead server's 300 chunks of 1 MiB took 100 s).
   */
  private waiting: Array<Need | null> = [];
  /** waiting[i] is null for every i below this */
  private waitingFrom = 0;
  private readonly startAt = performance.now();
  /** When each chunk that no file refers to was first seen so (see gcDelayMs). */
  private readonly orphanedAt = new Map<number, number>();
  /** chunkserver id -> until when its orphans are deleted at once (see underPressure) */
  private readonly pressedUntil = new Map<string, number>();

  constructor(
    private readonly state: MasterState,
    private readonly chunkservers: ChunkserverRegistry,
    private readonly chunks: ChunkManager,
    private readonly peers: ChunkClientPool,
    private readonly opts: ReplicationOptions,
    private readonly drains: Decommissioner,
  ) {
    this.schedule(opts.intervalMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** The next pass in `ms`. */
  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.passThenNext(), ms);
    this.timer.unref();
  }

  /** A pass, then the next one an interval after it began, or later after a long look (MAX_PASS_SHARE). */
  private async passThenNext(): Promise<void> {
    const began = performance.now();
    const lookedMs = await this.pass();
    const gapMs = Math.max(this.opts.intervalMs, lookedMs / MAX_PASS_SHARE);
    this.schedule(gapMs - (performance.now() - began));
  }

  /**
   * One look at every chunk; returns once the commands it started are sent (copies go on), with
   * the time the look itself took (ms).
   */
  private async pass(): Promise<number> {
    if (performance.now() < this.startAt + this.opts.startAfterMs) return 0;
    let lookedMs = 0;
    try {
      const began = performance.now();
      const { needs, referenced, short } = this.survey();
      const doomed = this.unwanted(referenced);
      lookedMs = performance.now() - began;
      this.lookingMs += lookedMs;
      await this.remove(doomed);
      needs.sort((a, b) => a.counted - b.counted || a.live.length - b.live.length);
      this.waiting = needs;
      this.waitingFrom = 0;
      this.startWaiting(needs.length);
      await this.drains.finishDrains(short);
    } catch (err) {
      log.error(`replication pass failed: ${(err as Error).message}`);
    }
    return lookedMs;
  }

  /**
   * Under-replicated chunks that can be copied (`needs`), what each handle a file refers to
   * should be (its current version and its file's factor), and the handles short of their
   * file's factor, copyable or not (`short`).
   */
  private survey(): { needs: Need[]; referenced: Map<number, Wanted>; short: Set<number> } {
    const needs: Need[] = [];
    const referenced = new Map<number, Wanted>();
    const short = new Set<number>();
    const { ns } = this.state;
    for (const { file } of ns.regularFiles()) {
      const replication = ns.replicationOf(file);
      for (const c of file.chunks!) {
        if (c.handle === HOLE) continue;
        const { live, counted, version } = this.chunkservers.replicasOf(c.handle, c.version);
        referenced.set(c.handle, { version, replication });
        // An unwritten chunk has nothing to copy or drain: a first write not yet confirmed left its replicas.
        if (c.version === UNWRITTEN || counted >= replication) continue;
        short.add(c.handle);
        if (live.length > 0) needs.push({ handle: c.handle, version, live, counted, replication });
      }
    }
    return { needs, referenced, short };
  }

  /**
   * The servers whose orphans go at once: those short of space (less than two chunks or a tenth
   * of their capacity free) and, for one gc delay after, those that were. The delay is for
   * speed (no file refers to an orphan, and its removal is durable before it goes: see
   * remove), and on a full cluster `rm` must make room for the next writes; staying
   * pressed while files are removed one by one frees them all, not just the first few that
   * lift the server over the mark.
   */
  private underPressure(now: number): Set<string> {
    for (const cs of this.chunkservers.list()) {
      if (cs.freeBytes < Math.max(2 * this.opts.chunkSize, cs.capacityBytes / 10)) this.pressedUntil.set(cs.id, now + this.opts.gcDelayMs);
    }
    for (const [id, until] of this.pressedUntil) if (until <= now) this.pressedUntil.delete(id);
    return new Set(this.pressedUntil.keys());
  }

  /**
   * The replicas to delete: stale, orphan and surplus replicas; a chunk being copied, or leased
   * and in a file, is left alone. Replicas of an unwritten chunk are kept like current ones: a
   * first write may be about to be confirmed (after a master restart, under a lease this master
   * never granted).
   */
  private unwanted(referenced: Map<number, Wanted>): Doomed[] {
    const current = new Map<number, string[]>();
    const corrupt: Array<[string, number]> = [];
    const doomed: Doomed[] = [];
    const now = performance.now();
    const orphans = new Set<number>();
    const pressed = this.underPressure(now);
    for (const [id, handle, version, isCorrupt] of this.chunkservers.liveReplicas()) {
      if (this.copying.has(handle)) continue;
      const wanted = referenced.get(handle);
      // An orphan goes even under a lease: no file has it, so nothing its writer does can land
      // (a writer that failed keeps its lease on a removed file's chunk until the lease ends).
      if (wanted === undefined) {
        orphans.add(handle);
        const since = this.orphanedAt.get(handle) ?? now;
        this.orphanedAt.set(handle, since);
        if (now - since >= this.opts.gcDelayMs || pressed.has(id)) doomed.push([id, handle, 'orphan']);
        continue;
      }
      // A lease being granted moves versions: which replica is stale is known once it is done.
      if (this.chunks.isLeased(handle)) continue;
      if (version < wanted.version) doomed.push([id, handle, `stale (version ${version} < ${wanted.version})`]);
      else if (isCorrupt) corrupt.push([id, handle]);
      // Only replicas that count can be surplus: a decommissioning server's copy is what is
      // being drained, and a decommissioned server's copy is a spare nobody reads.
      else if (version === wanted.version && this.chunkservers.stateOf(id) === 'normal') current.set(handle, [...(current.get(handle) ?? []), id]);
    }
    for (const handle of this.orphanedAt.keys()) if (!orphans.has(handle)) this.orphanedAt.delete(handle);
    // A corrupt replica goes once enough good ones exist (until then it is all some data has),
    // or once a good one exists and no other server could take a copy: its server is then the
    // only place a new good replica can go (three chunkservers, replication 3).
    for (const [id, handle] of corrupt) {
      const good = current.get(handle)?.length ?? 0;
      if (good >= referenced.get(handle)!.replication || (good > 0 && !this.copyTarget(handle, this.chunkservers.list()))) doomed.push([id, handle, 'corrupt']);
    }
    for (const [handle, holders] of current) {
      const { replication } = referenced.get(handle)!;
      if (holders.length <= replication || this.chunks.isLeased(handle)) continue;
      const fullestFirst = this.chunkservers.list()
        .filter((cs) => holders.includes(cs.id))
        .sort((a, b) => b.usedBytes / Math.max(b.capacityBytes, 1) - a.usedBytes / Math.max(a.capacityBytes, 1));
      for (const cs of fullestFirst.slice(0, holders.length - replication)) doomed.push([cs.id, handle, 'surplus']);
    }
    return doomed;
  }

  /** Deletes the replicas unwanted() chose, at most MAX_DELETES_PER_CALL per server a pass. */
  private async remove(doomed: Doomed[]): Promise<void> {
    // What made a replica an orphan (an unlink, a truncate, a rename over its file) must be on
    // disk before the replica goes: a master crash would replay the file back with nothing to read.
    if (doomed.some(([, , why]) => why === 'orphan')) await this.state.durable();
    const byServer = new Map<string, Array<[number, string]>>();
    for (const [id, handle, why] of doomed) {
      const list = byServer.get(id);
      if (list) list.push([handle, why]);
      else byServer.set(id, [[handle, why]]);
    }
    await Promise.all([...byServer].map(([id, replicas]) => this.deleteReplicas(id, replicas.slice(0, MAX_DELETES_PER_CALL))));
  }

  /** One call deletes a chunkserver's doomed replicas ([handle, why]); the rest wait for the next pass. */
  private async deleteReplicas(id: string, replicas: Array<[number, string]>): Promise<void> {
    const address = this.chunkservers.addressOf(id);
    let failures: Array<{ handle: number; error: FsError }>;
    try {
      failures = await this.peers.get(address).deleteChunks(replicas.map(([handle]) => handle));
    } catch (err) {
      log.warn(`deleting ${replicas.length} replicas on ${address} failed: ${(err as Error).message}`);
      return;
    }
    const failed = new Map(failures.map((f) => [f.handle, f.error]));
    // Orphans come by the thousand when a tree is removed: counted, not listed.
    let orphans = 0;
    for (const [handle, why] of replicas) {
      const error = failed.get(handle);
      if (error && error.code !== 'ENOENT') {
        log.warn(`deleting chunk ${handle} on ${address} failed: ${error.message}`);
        continue;
      }
      this.chunkservers.forgetReplica(id, handle); // gone, or was not there
      if (why === 'orphan') orphans++;
      else log.info(`deleted ${why} replica of chunk ${handle} on ${address}`);
    }
    if (orphans > 0) log.info(`deleted ${orphans} orphan replica${orphans === 1 ? '' : 's'} on ${address}`);
  }

  /** A live server among `candidates` that holds no replica of the chunk and has room for one. */
  private copyTarget(handle: number, candidates: ChunkserverView[]): ChunkserverView | undefined {
    const exclude = this.chunkservers.holdersOf(handle);
    return chooseReplicas(candidates, 1, { exclude, minFreeBytes: this.opts.chunkSize })[0];
  }

  /** Starts copies of waiting chunks while slots are free, looking at `looks` of them at most. */
  private startWaiting(looks: number): void {
    const end = Math.min(this.waiting.length, this.waitingFrom + looks);
    for (let i = this.waitingFrom; i < end && this.copying.size < this.opts.maxCopies; i++) {
      const need = this.waiting[i];
      if (need && this.startCopy(need) !== 'busy') this.waiting[i] = null;
    }
    while (this.waitingFrom < this.waiting.length && this.waiting[this.waitingFrom] === null) this.waitingFrom++;
  }

  /**
   * Copies the chunk from a live replica to a new server, both with a free slot; 'busy' if
   * none is free now, 'skipped' if the chunk is no longer to be copied here (it has its
   * replicas, is being copied or written, changed version, or no server could take it).
   */
  private startCopy(need: Need): 'started' | 'busy' | 'skipped' {
    if (this.copying.has(need.handle) || this.chunks.isLeased(need.handle)) return 'skipped';
    // Again, for a chunk that waited: servers may have died or come back since the pass.
    const { live, counted, version } = this.chunkservers.replicasOf(need.handle, need.version);
    if (version !== need.version || counted >= need.replication || live.length === 0) return 'skipped';
    const idle = (id: string) => (this.busy.get(id) ?? 0) < this.opts.maxCopiesPerServer;
    const servers = this.chunkservers.list();
    const source = live.find(idle);
    const target = source && this.copyTarget(need.handle, servers.filter((cs) => idle(cs.id)));
    if (!source || !target) return this.copyTarget(need.handle, servers) ? 'busy' : 'skipped';
    const copy = this.copy(need.handle, version, source, target.id, `${counted} counted of ${live.length} live replicas`).finally(() => {
      this.copying.delete(need.handle);
      for (const id of [source, target.id]) this.busy.set(id, (this.busy.get(id) ?? 1) - 1);
      this.startWaiting(LOOKS_PER_COPY_END);
    });
    for (const id of [source, target.id]) this.busy.set(id, (this.busy.get(id) ?? 0) + 1);
    this.copying.set(need.handle, copy);
    return 'started';
  }

  private async copy(handle: number, version: number, source: string, target: string, had: string): Promise<void> {
    const from = this.chunkservers.addressOf(source);
    const to = this.chunkservers.addressOf(target);
    try {
      const bytes = await this.peers.get(to).copy(handle, version, from);
      this.chunkservers.noteReplica(target, handle, version);
      log.info(`chunk ${handle} copied from ${from} to ${to} (${bytes} bytes; had ${had})`);
    } catch (err) {
      log.warn(`copying chunk ${handle} from ${from} to ${to} failed: ${(err as Error).message}`);
    }
  }
}
