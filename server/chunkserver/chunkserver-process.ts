import { logger } from '../common/log';
import { exitOnSignals } from '../common/shutdown';
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
  /** Background re-verification rate, bytes/s (default 16 MiB/s). */
  scrubBytesPerSec?: number;
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
  const scrubber = new Scrubber(store, {
    bytesPerSecond: o.scrubBytesPerSec ?? 16 * 1024 * 1024,
    onCorrupt: (handle) => log.error(`scrubber: replica of chunk ${handle} is corrupt; reporting it to the masters`),
  });
  scrubber.start();
  log.info(`chunkserver ${id} serving ${o.dataDirs.join(', ')}; masters ${o.masters.join(', ')}`);

  exitOnSignals(async () => {
    scrubber.stop();
    heartbeats!.stop();
    await rpc.stop();
    await store.close();
  });
}
