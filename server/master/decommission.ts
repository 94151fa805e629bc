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
 * Each chunk is drained to its own file's replication factor. A request that would leave
 * fewer live normal chunkservers than some chunk on the server needs (or than the cluster
 * default, which new files get) is refused (ENOSPC) rather than started: the drain could
 * never finish, and the cluster would quietly lose placement room. If servers die or a factor
 * is raised while a drain is under way it simply waits (the report shows it decommissioning,
 * and the chunks under-replicated) until there is room again.
 */
export class Decommissioner {
  constructor(
    private readonly state: MasterState,
    private readonly chunkservers: ChunkserverRegistry,
  ) {}

  /**
   * Starts draining the chunkserver with id or HOST:PORT `name`. Already decommissioning or
   * decommissioned: nothing changes. Unknown: ENOENT. Too few servers would remain: ENOSPC.
   */
  async start(name: string): Promise<ChunkserverView> {
    const cs = this.chunkservers.find(name);
    if (cs.state !== 'normal') return cs;
    const remaining = this.chunkservers.list().filter((o) => o.id !== cs.id && o.alive && o.state === 'normal').length;
    const needed = this.replicasNeededWithout(cs.id);
    if (remaining < needed) {
      throw new FsError('ENOSPC',
        `decommissioning ${cs.id} (${cs.address}) would leave ${remaining} live chunkservers taking replicas, ` +
        `fewer than the replication factor ${needed}: add chunkservers first`);
    }
    await this.state.commit({ op: 'setChunkserverState', id: cs.id, state: 'decommissioning' });
    log.info(`chunkserver ${cs.id} at ${cs.address} is being decommissioned (${cs.chunks} replicas to drain)`);
    return this.chunkservers.find(cs.id);
  }

  /**
   * The servers that must remain for a drain of `id` to finish: as many as the largest factor
   * among files with a replica on it (every file's when it has not reported its replicas since
   * this master started), and at least the cluster default, so that new files still get their
   * replicas. Walks the namespace: an operator's request, not a hot path.
   */
  private replicasNeededWithout(id: string): number {
    const ns = this.state.ns;
    const handles = this.chunkservers.handlesOn(id);
    const onServer = handles && new Set(handles);
    let most = ns.defaultReplication;
    for (const { file } of ns.regularFiles()) {
      const factor = ns.replicationOf(file);
      if (factor > most && (!onServer || file.chunks!.some((c) => onServer.has(c.handle)))) most = factor;
    }
    return most;
  }

  /**
   * Marks decommissioned every draining chunkserver none of whose chunks is short: `short`
   * holds the handles of file chunks with fewer counted replicas than their own file's factor
   * (the replication monitor's survey; unwritten chunks have nothing to drain). A server
   * whose replicas this master has not heard of (not reported since the master started) is
   * drained once no chunk at all is short.
   */
  async finishDrains(short: ReadonlySet<number>): Promise<void> {
    for (const [id, st] of this.state.ns.chunkserverStates.entries()) {
      if (st !== 'decommissioning') continue;
      const handles = this.chunkservers.handlesOn(id);
      const drained = handles === null ? short.size === 0 : handles.every((h) => !short.has(h));
      if (!drained) continue;
      await this.state.commit({ op: 'setChunkserverState', id, state: 'decommissioned' });
      log.info(`chunkserver ${id} is decommissioned: every chunk it held has its replicas elsewhere`);
    }
  }
}
