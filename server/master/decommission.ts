import { FsError } from '../common/fs-error';
import { logger } from '../common/log';
import type { ChunkserverRegistry, ChunkserverView } from './chunkserver-registry';
import type { MasterState } from './master-state';

const log = logger('decommission');

/**
 * Decommissioning, as HDFS does it: an operator asks for a chunkserver to be drained; from then
 * on it takes no new replicas and its replicas stop counting towards the replication factor,
 * so the replication monitor copies each of its chunks elsewhere (using it as a source like any
 * other replica). Once no chunk it holds is short of its factor on other servers, it is marked
 * decommissioned and can be switched off. Both steps are logged (see chunkserver-states.ts).
 *
 * A request that would leave fewer live normal chunkservers than the replication factor is
 * refused (ENOSPC) rather than started: the drain could never finish, and the cluster would
 * quietly lose placement room. If servers die while a drain is under way it simply waits (the
 * report shows it decommissioning, and the chunks under-replicated) until there is room again.
 */
export class Decommissioner {
  constructor(
    private readonly state: MasterState,
    private readonly chunkservers: ChunkserverRegistry,
    /** replicas each chunk should have */
    private readonly replication: number,
  ) {}

  /**
   * Starts draining the chunkserver with id or HOST:PORT `name`. Already decommissioning or
   * decommissioned: nothing changes. Unknown: ENOENT. Too few servers would remain: ENOSPC.
   */
  async start(name: string): Promise<ChunkserverView> {
    const cs = this.chunkservers.find(name);
    if (cs.state !== 'normal') return cs;
    const remaining = this.chunkservers.list().filter((o) => o.id !== cs.id && o.alive && o.state === 'normal').length;
    if (remaining < this.replication) {
      throw new FsError('ENOSPC',
        `decommissioning ${cs.id} (${cs.address}) would leave ${remaining} live chunkservers taking replicas, ` +
        `fewer than the replication factor ${this.replication}: add chunkservers first`);
    }
    await this.state.commit({ op: 'setChunkserverState', id: cs.id, state: 'decommissioning' });
    log.info(`chunkserver ${cs.id} at ${cs.address} is being decommissioned (${cs.chunks} replicas to drain)`);
    return this.chunkservers.find(cs.id);
  }

  /**
   * Marks decommissioned every draining chunkserver none of whose chunks is short: `short`
   * holds the handles of file chunks with fewer counted replicas than their factor, and
   * `busy(handle)` says a replica's chunk is being created (not in any file yet). A server
   * whose replicas this master has not heard of (not reported since the master started) is
   * drained once no chunk at all is short.
   */
  async finishDrains(short: ReadonlySet<number>, busy: (handle: number) => boolean): Promise<void> {
    for (const [id, st] of this.state.ns.chunkserverStates.entries()) {
      if (st !== 'decommissioning') continue;
      const handles = this.chunkservers.handlesOn(id);
      const drained = handles === null ? short.size === 0 : handles.every((h) => !short.has(h) && !busy(h));
      if (!drained) continue;
      await this.state.commit({ op: 'setChunkserverState', id, state: 'decommissioned' });
      log.info(`chunkserver ${id} is decommissioned: every chunk it held has its replicas elsewhere`);
    }
  }
}
