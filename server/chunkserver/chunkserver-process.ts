import { logger } from '../common/log';
import { AFTER_PARENT_MS, exitOnSignals } from '../common/shutdown';
import { startChunkRpc } from './chunk-service';
import { ChunkStore } from './chunk-store';
import { loadOrCreateChunkserverId } from './chunkserver-id';
import { HeartbeatSender } from './heartbeat';
import { Scrubber } from './scrubber';

const log = logger('chunkserver');

export interface ChunkserverOptions {
  dataDirs: string[];
  /** HOST:PORT; port 0 picks a free port. */
  listen: string;
  /** Every master's HOST:PORT: heartbeats go to all of them. */
  masters: string[];
  rack: string;
  /** seconds (default 1) */
  heartbeatIntervalSec?: number;
  /** Largest chunk this chunkserver accepts, bytes (default 64 MiB). */
  chunkSize?: number;
  /** Background re-verification rate, MiB/s (default 16); 0 turns the scrubber off. */
  scrubMiBPerSec?: number;
  /** The scrubber skips chunks read or written within this many seconds (default 60). */
  scrubIdleSec?: number;
  /** Seconds between the scrubber's passes over all chunks (default 10). */
  scrubIntervalSec?: number;
  /** Cap on re-replication copies pulled in, bytes/s; 0: unlimited (default: chunk-service.ts). */
  copyBytesPerSec?: number;
}

/**
 * The chunkserver's composition root. Start-up order: identity -> chunk store (scans the data
 * directories) -> chunk RPC server -> the `listening` line -> heartbeats (they advertise the
 * bound address) -> scrubber. Shut-down in reverse.
 */
export async function runChunkserver(o: ChunkserverOptions): Promise<void> {
  const id = loadOrCreateChunkserverId(o.dataDirs);
  let heartbeats: HeartbeatSender | null = null;
  const store = await ChunkStore.open(o.dataDirs, {
    chunkSize: o.chunkSize ?? 64 * 1024 * 1024,
    // Replicas lost before the first heartbeat are covered by its full report.
    onChunksLost: (handles) => heartbeats?.noteLost(handles),
  });
  const rpc = await startChunkRpc(store, o.listen, { copyBytesPerSec: o.copyBytesPerSec });
  console.log(`listening ${rpc.address}`);
  heartbeats = new HeartbeatSender(
    o.masters,
    (o.heartbeatIntervalSec ?? 1) * 1000,
    { id, address: rpc.address, rack: o.rack, load: () => rpc.inFlight() },
    store,
  );
  heartbeats.start();
  const scrubMiBPerSec = o.scrubMiBPerSec ?? 16;
  // Found corruption needs no call here: the store lists it, and every heartbeat reports that list.
  const scrubber = scrubMiBPerSec > 0 ? new Scrubber(store, {
    bytesPerSecond: scrubMiBPerSec * 1024 * 1024,
    idleMs: o.scrubIdleSec === undefined ? undefined : o.scrubIdleSec * 1000,
    roundPauseMs: o.scrubIntervalSec === undefined ? undefined : o.scrubIntervalSec * 1000,
    onCorrupt: (handle) => log.error(`scrubber: replica of chunk ${handle} is corrupt; reporting it to the masters`),
  }) : null;
  scrubber?.start();
  log.info(`chunkserver ${id} serving ${o.dataDirs.join(', ')}; masters ${o.masters.join(', ')}`);

  exitOnSignals(async () => {
    await scrubber?.stop();
    heartbeats!.stop();
    await rpc.stop();
    await store.close();
  }, AFTER_PARENT_MS);
}
