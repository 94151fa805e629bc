import { strict as assert } from 'assert';
import { ChunkClientPool } from '../client/chunk-client';
import { ChunkManager } from '../server/master/chunk-manager';
import { ChunkserverRegistry } from '../server/master/chunkserver-registry';
import { Decommissioner } from '../server/master/decommission';
import type { MasterState } from '../server/master/master-state';
import { Namespace } from '../server/master/namespace';
import { ReplicationMonitor } from '../server/master/replication-monitor';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The replication monitor's passes over a large namespace: each looks at every chunk, so they
 * are spaced by what they cost, not only by the interval, and leave the master time to answer.
 */
describe('replication monitor passes', function () {
  this.timeout(60_000);

  it('take at most about a tenth of the time when a pass costs more than a tenth of the interval', async () => {
    const ns = new Namespace();
    const files = 60_000;
    for (let i = 1; i <= files; i++) {
      const path = `/f${i}`;
      ns.apply({ op: 'create', path, mode: 0o644, uid: 0, gid: 0, ino: i + 1, time: 1 });
      ns.apply({ op: 'addChunk', path, index: 0, handle: i, version: 1 });
    }
    const state: MasterState = {
      ns,
      nextIno: () => ns.lastIno + 1,
      commit: async (m) => ns.apply(m),
      durable: async () => undefined,
      checkpoint: async () => ({ txid: 0, bytes: 1, durationMs: 1 }),
      status: () => ({ txid: 0, checkpointTxid: 0, epoch: 1, inodes: ns.inodeCount, metaDirs: [], alarms: [] }),
    };
    const chunkservers = new ChunkserverRegistry(5000, () => performance.now());
    const peers = new ChunkClientPool();
    const chunks = new ChunkManager(state, chunkservers, peers, { chunkSize: 1 << 20 });
    // Passes every 10 ms were asked for; one over 60,000 chunks takes tens of ms.
    const started = performance.now();
    const monitor = new ReplicationMonitor(state, chunkservers, chunks, peers, {
      chunkSize: 1 << 20, intervalMs: 10, maxCopies: 8, maxCopiesPerServer: 2, startAfterMs: 0, gcDelayMs: 60_000,
    }, new Decommissioner(state, chunkservers));
    try {
      await sleep(2000);
    } finally {
      monitor.stop();
      chunkservers.stop();
      peers.closeAll();
    }
    const share = monitor.lookingMs / (performance.now() - started);
    assert.ok(monitor.lookingMs > 0, 'no pass ran');
    assert.ok(share < 0.3, `the passes took ${(share * 100).toFixed(0)}% of the time (${monitor.lookingMs.toFixed(0)} ms)`);
  });
});
