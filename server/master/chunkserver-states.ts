import { FsError } from '../common/fs-error';
import type { SetChunkserverStateMutation } from './mutation';

/**
 * An operator's say over a chunkserver, as HDFS's admin states:
 *  - normal: takes new replicas, its replicas count towards chunks' replication factor;
 *  - decommissioning: being drained: no new replicas, its replicas do not count (so they are
 *    copied elsewhere) but still serve reads and act as copy sources;
 *  - decommissioned: drained: every chunk it held has its full factor on other servers; it gets
 *    nothing, and may be switched off.
 */
export const CHUNKSERVER_STATES = ['normal', 'decommissioning', 'decommissioned'] as const;
export type ChunkserverState = (typeof CHUNKSERVER_STATES)[number];

/**
 * Chunkserver admin states by chunkserver id. Unlike everything else the master knows about
 * chunkservers (soft state from heartbeats), an operator's decision must outlive a master
 * restart, so it changes only through a logged mutation and is kept in checkpoints. Servers
 * in the normal state are not stored.
 */
export class ChunkserverStates {
  private readonly byId = new Map<string, ChunkserverState>();

  get(id: string): ChunkserverState {
    return this.byId.get(id) ?? 'normal';
  }

  /** Every chunkserver not in the normal state. */
  entries(): Array<[string, ChunkserverState]> {
    return [...this.byId];
  }

  apply(m: SetChunkserverStateMutation): void {
    if (typeof m.id !== 'string' || m.id.length === 0) throw new FsError('EINVAL', 'a chunkserver state needs a chunkserver id');
    if (!CHUNKSERVER_STATES.includes(m.state)) throw new FsError('EINVAL', `unknown chunkserver state ${String(m.state)}`);
    if (m.state === 'normal') this.byId.delete(m.id);
    else this.byId.set(m.id, m.state);
  }

  /** For checkpoints: the stored states (normal ones are implied). */
  toJSON(): Record<string, ChunkserverState> {
    return Object.fromEntries(this.byId);
  }

  /** From a checkpoint's toJSON() (absent in checkpoints written before states existed). */
  load(saved: Record<string, ChunkserverState> | undefined): void {
    for (const [id, state] of Object.entries(saved ?? {})) this.apply({ op: 'setChunkserverState', id, state });
  }
}
