import { performance } from 'perf_hooks';
import * as grpc from '@grpc/grpc-js';
import type { ChunkserverMasterClient } from '../../generated/chunkfs/csmaster/ChunkserverMaster';
import type { HeartbeatRequest } from '../../generated/chunkfs/csmaster/HeartbeatRequest';
import type { HeartbeatResponse__Output } from '../../generated/chunkfs/csmaster/HeartbeatResponse';
import { statusToFsError } from '../common/grpc-status';
import { logger } from '../common/log';
import { MESSAGE_LIMITS, PROMPT_RECONNECT, protos } from '../common/proto';
import type { ChunkStore } from './chunk-store';

const log = logger('heartbeat');

/** A full chunk report goes out at least this often, even if no master asks (ms). */
const FULL_REPORT_EVERY_MS = 60_000;

export interface HeartbeatIdentity {
  id: string;
  address: string;
  rack: string;
  /** Chunk operations in flight now. */
  load: () => number;
}

/** Per master: its stub and what it still has to be told. */
interface MasterLink {
  address: string;
  stub: ChunkserverMasterClient;
  needsFullReport: boolean;
  lastFullReportMs: number;
  /** Lost replicas not yet acknowledged by this master. */
  lost: Set<number>;
  timer: NodeJS.Timeout | null;
}

/**
 * Heartbeats to every configured master, each on its own loop so that one unreachable master
 * never delays the others. The reply is the control plane: a master that does not know our
 * replicas (new, or restarted) asks for a full report. Replicas lost with a failed data
 * directory are reported to each master until that master has acknowledged them.
 */
export class HeartbeatSender {
  private readonly links: MasterLink[];
  private stopped = false;

  constructor(
    masters: string[],
    private readonly intervalMs: number,
    private readonly self: HeartbeatIdentity,
    private readonly store: ChunkStore,
  ) {
    // Reconnecting promptly: a master back from an outage waits for its chunkservers a few
    // seconds only (ChunkserverRegistry.starting).
    this.links = masters.map((address) => ({
      address,
      stub: new protos.chunkfs.csmaster.ChunkserverMaster(address, grpc.credentials.createInsecure(), { ...MESSAGE_LIMITS, ...PROMPT_RECONNECT }),
      needsFullReport: true,
      lastFullReportMs: 0,
      lost: new Set(),
      timer: null,
    }));
  }

  start(): void {
    for (const link of this.links) void this.beat(link);
  }

  /** Replicas gone with a failed directory: every master must hear of them. */
  noteLost(handles: number[]): void {
    for (const link of this.links) for (const h of handles) link.lost.add(h);
    for (const link of this.links) this.beatSoon(link);
  }

  stop(): void {
    this.stopped = true;
    for (const link of this.links) {
      if (link.timer) clearTimeout(link.timer);
      link.stub.close();
    }
  }

  private beatSoon(link: MasterLink, delayMs = 0): void {
    if (this.stopped) return;
    if (link.timer) clearTimeout(link.timer);
    link.timer = setTimeout(() => void this.beat(link), delayMs);
  }

  private async beat(link: MasterLink): Promise<void> {
    link.timer = null;
    const full = link.needsFullReport || performance.now() - link.lastFullReportMs >= FULL_REPORT_EVERY_MS;
    const lost = [...link.lost];
    let again = this.intervalMs;
    try {
      const usage = await this.store.usage();
      const request: HeartbeatRequest = {
        id: this.self.id,
        address: this.self.address,
        rack: this.self.rack,
        capacityBytes: usage.capacityBytes,
        usedBytes: usage.usedBytes,
        freeBytes: usage.freeBytes,
        load: this.self.load(),
        fullReport: full,
        chunks: full ? this.store.list().map((c) => ({ handle: c.handle, version: c.version, size: c.size })) : [],
        lostChunks: lost,
        corruptChunks: this.store.corrupt(),
      };
      const reply = await this.send(link, request);
      if (full) link.lastFullReportMs = performance.now();
      link.needsFullReport = reply.sendFullReport;
      for (const h of lost) link.lost.delete(h);
      if (link.needsFullReport) again = 0; // asked for one: send it now, not a period later
    } catch (err) {
      log.debug(`heartbeat to master ${link.address} failed: ${(err as Error).message}`);
    }
    this.beatSoon(link, again);
  }

  private send(link: MasterLink, request: HeartbeatRequest): Promise<HeartbeatResponse__Output> {
    return new Promise((resolve, reject) => {
      link.stub.heartbeat(request, { deadline: Date.now() + Math.max(1000, this.intervalMs * 2) }, (err, reply) => {
        if (err) reject(statusToFsError(err, `master ${link.address}`));
        else resolve(reply!);
      });
    });
  }
}
