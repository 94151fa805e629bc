/**
 * Worker-thread entry: builds the namespace at `txid` from the metadata directories
 * (checkpoint + closed log segments) and writes it as a new checkpoint into each of them.
 * Running in a worker with its own copy of the state is what keeps a checkpoint of a large
 * namespace from stalling the master's mutations: the live namespace is never touched.
 */
import { parentPort, workerData } from 'worker_threads';
import { writeCheckpoint } from './checkpoint-file';
import { recover } from './recovery';

export interface CheckpointJob {
  dirs: string[];
  txid: number;
}
export interface CheckpointDirResult {
  dir: string;
  bytes: number;
  /** '' on success */
  error: string;
}

const job = workerData as CheckpointJob;
const state = recover(job.dirs, { upToTxid: job.txid, retryKeys: false });
const results: CheckpointDirResult[] = job.dirs.map((dir) => {
  try {
    return { dir, bytes: writeCheckpoint(dir, state.ns, job.txid, state.lastEpoch), error: '' };
  } catch (err) {
    return { dir, bytes: 0, error: (err as Error).message };
  }
});
parentPort!.postMessage(results);
