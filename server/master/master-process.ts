import { AFTER_PARENT_MS, exitOnSignals } from '../common/shutdown';
import { ChunkClientPool } from '../../client/chunk-client';
import { ChunkManager } from './chunk-manager';
import { ChunkserverRegistry } from './chunkserver-registry';
import { ChunkserverRoster } from './chunkserver-roster';
import { Decommissioner } from './decommission';
import { ReplicationMonitor } from './replication-monitor';
import { DurableMasterState } from './durable-master-state';
import { startMasterRpc } from './master-rpc';
import { openMetaStore } from './meta-store';
import { DEFAULT_GC_DELAY_SEC, DEFAULT_REPLICATION } from './request-checks';

export interface MasterOptions {
  metaDirs: string[];
  /** HOST:PORT; port 0 picks a free port. */
  listen: string;
  /** Checkpoint after this many transactions (default 100,000). */
  checkpointTxns?: number;
  /** ...or after this many seconds if anything changed (default 600). */
  checkpointPeriodSec?: number;
  /** A chunkserver silent this long is dead (default 5 s: five heartbeats). */
  deadTimeoutSec?: number;
  /** Seconds a replica no file refers to is kept before it is deleted (see ReplicationOptions.gcDelayMs). */
  gcDelaySec?: number;
  /** Seconds between the replication monitor's passes over every chunk (default 1). */
  replicationIntervalSec?: number;
  /** Replication factor of files created without one (default 3). */
  replication?: number;
  /** Bytes per chunk (default 64 MiB). */
  chunkSize?: number;
}

/**
 * How long the master waits for one CopyChunk (ms). Chunkservers cap the bandwidth of the
 * copies they receive (--replication-bandwidth), which the master does not know, so this is
 * generous: two 64 MiB copies sharing a 0.15 MB/s cap still fit. A copy to a dead server fails
 * long before, when its connection breaks.
 */
const COPY_DEADLINE_MS = 15 * 60_000;

/** Exit code when no metadata directory can be written: nothing could be acknowledged. */
const EXIT_LOG_LOST = 70;

/**
 * The master's composition root. Start-up order: metadata store (locks, recovery, log
 * writer, checkpointer) -> chunkserver registry (empty: soft state; the roster of the last
 * run says whom to wait for) -> chunk manager (with its
 * clients to chunkservers) -> decommissioner -> replication monitor -> RPC server -> the
 * `listening` line. Shut-down in reverse.
 */
export async function runMaster(options: MasterOptions): Promise<void> {
  const store = openMetaStore(
    options.metaDirs,
    { everyTxns: options.checkpointTxns ?? 100_000, everySeconds: options.checkpointPeriodSec ?? 600 },
    () => process.exit(EXIT_LOG_LOST),
  );
  const state = new DurableMasterState(store);
  state.ns.defaultReplication = options.replication ?? DEFAULT_REPLICATION;
  const deadTimeoutMs = (options.deadTimeoutSec ?? 5) * 1000;
  const roster = new ChunkserverRoster(options.metaDirs[0]);
  const chunkservers = new ChunkserverRegistry(deadTimeoutMs, () => performance.now(), (id) => state.ns.chunkserverStates.get(id), roster);
  const peers = new ChunkClientPool({ copyDeadlineMs: COPY_DEADLINE_MS });
  const chunks = new ChunkManager(state, chunkservers, peers, {
    chunkSize: options.chunkSize ?? 64 * 1024 * 1024,
  });
  const decommissioner = new Decommissioner(state, chunkservers);
  const monitor = new ReplicationMonitor(state, chunkservers, chunks, peers, {
    chunkSize: chunks.options.chunkSize,
    intervalMs: (options.replicationIntervalSec ?? 1) * 1000,
    maxCopies: 8,
    maxCopiesPerServer: 2,
    startAfterMs: deadTimeoutMs,
    gcDelayMs: (options.gcDelaySec ?? DEFAULT_GC_DELAY_SEC) * 1000,
  }, decommissioner);
  const rpc = await startMasterRpc({ state, chunkservers, chunks, decommissioner }, options.listen);
  console.log(`listening ${rpc.address}`);

  exitOnSignals(async () => {
    await rpc.stop();
    monitor.stop();
    peers.closeAll();
    chunkservers.stop();
    await store.close();
  }, AFTER_PARENT_MS);
}
