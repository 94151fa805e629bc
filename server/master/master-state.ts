import type { Attr } from './inode';
import type { Mutation } from './mutation';
import type { Namespace } from './namespace';

export interface MetaDirStatus {
  path: string;
  healthy: boolean;
  /** Why it was dropped; '' while healthy. */
  error: string;
}

export interface MasterStatus {
  /** Last durable transaction id. */
  txid: number;
  /** Transaction id covered by the newest checkpoint. */
  checkpointTxid: number;
  epoch: number;
  inodes: number;
  metaDirs: MetaDirStatus[];
  alarms: string[];
}

export interface CheckpointResult {
  txid: number;
  /** Size of one copy in bytes. */
  bytes: number;
  durationMs: number;
}

/**
 * What the RPC layer needs from the master: the namespace for reads, and a commit path for
 * mutations. commit() validates and applies the mutation in memory (throwing FsError and
 * changing nothing when it is invalid), appends it to the operation log, and resolves only once
 * the record is durable in every healthy metadata directory (group commit).
 */
export interface MasterState {
  readonly ns: Namespace;
  /** A fresh inode number for a create/mkdir/symlink mutation. */
  nextIno(): number;
  commit(m: Mutation): Promise<Attr | null>;
  /**
   * Resolves once every mutation applied so far is durable: what a call must wait for before
   * answering from state an earlier, still unlogged commit made (a repeated call finding its
   * work done).
   */
  durable(): Promise<void>;
  checkpoint(): Promise<CheckpointResult>;
  status(): MasterStatus;
}
