import { FsError } from '../common/fs-error';
import { logger } from '../common/log';
import type { ChunkserverRoster } from './chunkserver-roster';
import type { ChunkserverState } from './chunkserver-states';

const log = logger('chunkservers');
/**
 * The longest a restarted master waits for the chunkservers of its last run (see starting):
 * heartbeats come every second or so, and a client's call gives up after 10 s.
 */
const ROSTER_WAIT_MAX_MS = 5000;

/** What a heartbeat tells the master (plain values; see proto/chunkserver_master.proto). */
export interface Heartbeat {
  id: string;
  address: string;
  rack: string;
  capacityBytes: number;
  usedBytes: number;
  freeBytes: number;
  load: number;
  /** Present on a full report: every replica the chunkserver holds (handle -> version). */
  fullReport: Map<number, number> | null;
  lostChunks: number[];
  corruptChunks: number[];
}

export interface ChunkserverView {
  id: string;
  address: string;
  rack: string;
  alive: boolean;
  chunks: number;
  capacityBytes: number;
  usedBytes: number;
  freeBytes: number;
  load: number;
  /** When its last heartbeat came, by the registry's clock (monotonic; see report() for a date) */
  lastHeartbeatMs: number;
  /** the operator's say (decommissioning); only 'normal' servers take new replicas */
  state: ChunkserverState;
}

/** Where a chunk's current version can be used, and how many of those replicas count. */
export interface ChunkReplicas {
  /**
   * Ids of the live, uncorrupted replicas to read from, copy from and write to, best first:
   * normal servers, then decommissioning ones (drained last); a decommissioned server only
   * when nothing else has the chunk (its data is then the last copy).
   */
  live: string[];
  /** Those of `live` on normal servers: what counts towards the replication factor. */
  counted: number;
  /** some replica at the current version is reported corrupt */
  corrupt: boolean;
  version: number;
}

interface Chunkserver extends Omit<ChunkserverView, 'chunks' | 'state'> {
  /** handle -> version; null until the first full report since this master started. */
  replicas: Map<number, number> | null;
  corrupt: Set<number>;
}

/**
 * The master's picture of the chunkservers, rebuilt from heartbeats (soft state, never
 * logged: after a master restart every chunkserver re-registers with a full report). A
 * chunkserver silent for longer than the dead timeout is marked dead and its replicas stop
 * counting as live.
 */
export class ChunkserverRegistry {
  private readonly servers = new Map<string, Chunkserver>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly sweepEveryMs: number;
  /** When the sweeper last ran (performance.now(): the event loop's own clock, not `now`). */
  private lastSweepAt = performance.now();
  /** The chunkservers of the roster not yet registered with their full report (see starting). */
  private readonly awaited: Set<string>;
  /** The wait for them, while it lasts (see starting). */
  private startup: { done: Promise<void>; resolve: () => void; timer: NodeJS.Timeout } | null = null;

  constructor(
    private readonly deadTimeoutMs: number,
    /** A monotonic clock (ms): a step of the wall clock must not kill or revive anyone. */
    private readonly now: () => number = () => performance.now(),
    /** The logged admin state of a chunkserver (ChunkserverStates.get). */
    readonly stateOf: (id: string) => ChunkserverState = () => 'normal',
    /** Who was alive when this master (or its previous run) last looked; kept up to date. */
    private readonly roster: Pick<ChunkserverRoster, 'load' | 'save'> | null = null,
  ) {
    this.sweepEveryMs = Math.min(1000, Math.max(50, deadTimeoutMs / 4));
    this.sweeper = setInterval(() => this.sweepOnTime(), this.sweepEveryMs);
    this.sweeper.unref();
    this.awaited = roster?.load() ?? new Set();
    if (this.awaited.size > 0) this.startup = this.waitForRoster();
  }

  /**
   * While the chunkservers alive before this master started are still registering (each does
   * at its next heartbeat), a promise that settles once all have sent their full report, or
   * after the dead timeout (at most ROSTER_WAIT_MAX_MS): those missing then count as dead.
   * Until then the master's picture is partial: a placement would find no room (ENOSPC) or
   * pile onto the first servers back, a lease would leave the late replicas stale, a chunk
   * would seem to have no replica. Null when there is nothing to wait for (the usual case).
   */
  starting(): Promise<void> | null {
    return this.startup?.done ?? null;
  }

  private waitForRoster(): { done: Promise<void>; resolve: () => void; timer: NodeJS.Timeout } {
    let resolve = (): void => undefined;
    const done = new Promise<void>((r) => (resolve = r));
    const timer = setTimeout(() => this.endStartup(true), Math.min(this.deadTimeoutMs, ROSTER_WAIT_MAX_MS));
    timer.unref();
    return { done, resolve, timer };
  }

  /** Ends the wait; `save`: the roster becomes who is alive now (not on stop: that may be a partial set). */
  private endStartup(save: boolean): void {
    const startup = this.startup;
    if (!startup) return;
    clearTimeout(startup.timer);
    this.startup = null;
    if (save) {
      if (this.awaited.size > 0) log.warn(`${this.awaited.size} chunkserver(s) of the last run did not register in time`);
      this.saveRoster();
    }
    startup.resolve();
  }

  /** The roster: who is alive now (not while registering: a crash then would forget the rest). */
  private saveRoster(): void {
    if (this.startup || !this.roster) return;
    this.roster.save([...this.servers.values()].filter((cs) => cs.alive).map((cs) => cs.id));
  }

  /** Records a heartbeat; answers whether the master needs a full report. */
  heartbeat(hb: Heartbeat): { sendFullReport: boolean } {
    let cs = this.servers.get(hb.id);
    const joined = !cs?.alive;
    if (!cs) {
      log.info(`chunkserver ${hb.id} registered at ${hb.address}${hb.rack ? ` (rack ${hb.rack})` : ''}`);
      cs = { ...hb, alive: true, lastHeartbeatMs: 0, replicas: null, corrupt: new Set() };
      this.servers.set(hb.id, cs);
    } else if (!cs.alive) {
      log.info(`chunkserver ${hb.id} at ${hb.address} is back`);
    }
    Object.assign(cs, {
      address: hb.address,
      rack: hb.rack,
      capacityBytes: hb.capacityBytes,
      usedBytes: hb.usedBytes,
      freeBytes: hb.freeBytes,
      load: hb.load,
      alive: true,
      lastHeartbeatMs: this.now(),
    });
    if (hb.fullReport) {
      cs.replicas = hb.fullReport;
      for (const h of cs.corrupt) if (!hb.fullReport.has(h)) cs.corrupt.delete(h);
    }
    for (const h of hb.lostChunks) {
      cs.replicas?.delete(h);
      cs.corrupt.delete(h);
    }
    for (const h of hb.corruptChunks) cs.corrupt.add(h);
    if (hb.fullReport && this.awaited.delete(hb.id) && this.awaited.size === 0) this.endStartup(true);
    if (joined) this.saveRoster();
    return { sendFullReport: cs.replicas === null };
  }

  /**
   * The periodic sweep. One that runs late found the master's event loop blocked (a log write
   * on a stalled disk, a long pause): heartbeats that arrived meanwhile are still unread, and
   * timers run before them, so the blocked time is not counted as the chunkservers' silence.
   * Otherwise a stall past the dead timeout would declare every chunkserver dead at once and
   * start copying all their chunks.
   */
  private sweepOnTime(): void {
    const at = performance.now();
    const blocked = at - this.lastSweepAt - this.sweepEveryMs;
    this.lastSweepAt = at;
    if (blocked > this.sweepEveryMs) {
      log.warn(`master event loop blocked for ${Math.round(blocked)} ms: chunkserver silence meanwhile not counted`);
      // Heartbeats read since the stall (it may have been in a timer, before a poll) are fresh.
      const stallStartMs = this.now() - blocked;
      for (const cs of this.servers.values()) if (cs.alive && cs.lastHeartbeatMs < stallStartMs) cs.lastHeartbeatMs += blocked;
    }
    this.sweep();
  }

  /** Marks chunkservers silent past the dead timeout as dead; returns the newly dead ids. */
  sweep(): string[] {
    const dead: string[] = [];
    const limit = this.now() - this.deadTimeoutMs;
    for (const cs of this.servers.values()) {
      if (cs.alive && cs.lastHeartbeatMs < limit) {
        cs.alive = false;
        dead.push(cs.id);
        log.warn(`chunkserver ${cs.id} at ${cs.address} is dead (silent for more than ${this.deadTimeoutMs} ms)`);
      }
    }
    if (dead.length > 0) this.saveRoster();
    return dead;
  }

  list(): ChunkserverView[] {
    return [...this.servers.values()].map(({ replicas, corrupt: _corrupt, ...cs }) =>
      ({ ...cs, chunks: replicas?.size ?? 0, state: this.stateOf(cs.id) }));
  }

  /** list() for people (`admin report`): each last heartbeat as a date, ms since the epoch. */
  report(): ChunkserverView[] {
    const sinceEpoch = Date.now() - this.now();
    return this.list().map((cs) => ({ ...cs, lastHeartbeatMs: cs.lastHeartbeatMs + sinceEpoch }));
  }

  /**
   * The chunkserver an operator names by id or by HOST:PORT (a live one first if a dead one
   * had the same address); ENOENT when no chunkserver has registered under that name.
   */
  find(name: string): ChunkserverView {
    const all = this.list();
    const byAddress = all.filter((cs) => cs.address === name).sort((a, b) => Number(b.alive) - Number(a.alive));
    const found = all.find((cs) => cs.id === name) ?? byAddress[0];
    if (!found) throw new FsError('ENOENT', `no chunkserver with id or address ${JSON.stringify(name)} has registered with this master`);
    return found;
  }

  /** Handles of the replicas a chunkserver holds (any version), or null if it has not reported them. */
  handlesOn(id: string): number[] | null {
    const replicas = this.servers.get(id)?.replicas;
    return replicas ? [...replicas.keys()] : null;
  }

  /** A replica the master just had created: known before the chunkserver's next full report. */
  noteReplica(id: string, handle: number, version: number): void {
    this.servers.get(id)?.replicas?.set(handle, version);
  }

  /** The master had this replica deleted. */
  forgetReplica(id: string, handle: number): void {
    const cs = this.servers.get(id);
    cs?.replicas?.delete(handle);
    cs?.corrupt.delete(handle);
  }

  /** Every replica a live chunkserver reported: (chunkserver id, handle, version, corrupt). */
  *liveReplicas(): Generator<[string, number, number, boolean]> {
    for (const cs of this.servers.values()) {
      if (!cs.alive || !cs.replicas) continue;
      for (const [handle, version] of cs.replicas) yield [cs.id, handle, version, cs.corrupt.has(handle)];
    }
  }

  /** Chunkservers holding any copy of the chunk (any version, dead or alive): not new targets. */
  holdersOf(handle: number): Set<string> {
    const ids = new Set<string>();
    for (const cs of this.servers.values()) if (cs.replicas?.has(handle)) ids.add(cs.id);
    return ids;
  }

  /** The id of the chunkserver at HOST:PORT, or null if none is known there. */
  idAt(address: string): string | null {
    for (const cs of this.servers.values()) if (cs.address === address) return cs.id;
    return null;
  }

  /** HOST:PORT of a chunkserver ('' if unknown). */
  addressOf(id: string): string {
    return this.servers.get(id)?.address ?? '';
  }

  /** Raw space of the live chunkservers (bytes): what statfs reports for the cluster. */
  capacity(): { capacityBytes: number; freeBytes: number } {
    let capacityBytes = 0;
    let freeBytes = 0;
    for (const cs of this.servers.values()) {
      if (!cs.alive) continue;
      capacityBytes += cs.capacityBytes;
      freeBytes += cs.freeBytes;
    }
    return { capacityBytes, freeBytes };
  }

  /**
   * The live, uncorrupted replicas of a chunk at its current version. A replica older than
   * `recorded` (the log's version) missed a write and is stale. One newer than `recorded` means
   * the master bumped the replicas' version for a lease and died before logging it; as in GFS,
   * the newest version present is then taken as current.
   */
  replicasOf(handle: number, recorded: number): ChunkReplicas {
    let version = recorded;
    for (const cs of this.servers.values()) {
      const v = cs.replicas?.get(handle);
      if (v !== undefined && v > version && cs.alive && !cs.corrupt.has(handle)) version = v;
    }
    const byState: Record<ChunkserverState, string[]> = { normal: [], decommissioning: [], decommissioned: [] };
    let corrupt = false;
    for (const cs of this.servers.values()) {
      if (cs.replicas?.get(handle) !== version) continue;
      if (cs.corrupt.has(handle)) corrupt = true;
      else if (cs.alive) byState[this.stateOf(cs.id)].push(cs.id);
    }
    const live = [...byState.normal, ...byState.decommissioning];
    if (live.length === 0) live.push(...byState.decommissioned);
    return { live, counted: byState.normal.length, corrupt, version };
  }

  stop(): void {
    clearInterval(this.sweeper);
    this.endStartup(false); // nobody is left waiting
  }
}
