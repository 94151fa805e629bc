import type { Attr } from './inode';
import type { CheckpointResult, MasterState, MasterStatus } from './master-state';
import type { MetaStore } from './meta-store';
import type { Mutation } from './mutation';
import type { Namespace } from './namespace';

/**
 * MasterState over the real operation log: apply in memory (validation happens here, so a
 * rejected mutation is neither applied nor logged), append in the same tick (so log order is
 * apply order), and answer only once the record is durable everywhere.
 */
export class DurableMasterState implements MasterState {
  readonly ns: Namespace;

  constructor(private readonly store: MetaStore) {
    this.ns = store.ns;
  }

  nextIno(): number {
    return this.ns.lastIno + 1;
  }

  async commit(m: Mutation): Promise<Attr | null> {
    const attr = this.ns.apply(m);
    const txid = this.store.writer.append(Buffer.from(JSON.stringify(m)));
    await this.store.writer.waitDurable(txid);
    this.store.checkpointer.maybeRun();
    return attr;
  }

  durable(): Promise<void> {
    return this.store.writer.waitDurable(this.store.writer.lastTxid);
  }

  checkpoint(): Promise<CheckpointResult> {
    return this.store.checkpointer.checkpoint();
  }

  status(): MasterStatus {
    const dirs = this.store.writer.directories;
    return {
      txid: this.store.writer.durableTxid,
      checkpointTxid: this.store.checkpointer.lastTxid,
      epoch: this.store.epoch,
      inodes: this.ns.inodeCount,
      metaDirs: dirs.map((d) => ({ path: d.path, healthy: d.healthy, error: d.error })),
      alarms: [
        ...this.store.startupAlarms,
        ...dirs.filter((d) => !d.healthy).map((d) => `metadata directory ${d.path} failed: ${d.error}`),
      ],
    };
  }
}
