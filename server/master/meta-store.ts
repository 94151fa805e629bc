import * as fs from 'fs';
import { logger } from '../common/log';
import { StartupError } from '../common/startup-error';
import type { Namespace } from './namespace';
import { writeCheckpoint } from './oplog/checkpoint-file';
import { Checkpointer, CheckpointPolicy } from './oplog/checkpointer';
import { truncateTornTail } from './oplog/log-reader';
import { LogWriter } from './oplog/log-writer';
import { acquireLock, releaseLock } from './oplog/meta-dir';
import { purgeMetaDir } from './oplog/purge';
import { recover } from './oplog/recovery';

const log = logger('meta-store');

/** The recovered namespace and the machinery that keeps it durable. */
export interface MetaStore {
  ns: Namespace;
  writer: LogWriter;
  checkpointer: Checkpointer;
  epoch: number;
  /** Alarms raised during start-up (directories that could not be used). */
  startupAlarms: string[];
  close(): Promise<void>;
}

/**
 * Start-up of the metadata store, in this order (each step needs the one before):
 *  1. lock every metadata directory (creating missing ones);
 *  2. recover: newest verifying checkpoint + replay (refuses if no consistent state exists);
 *  3. cut torn tails, which were never acknowledged; set rejected checkpoints aside;
 *  4. open new log segments with the next epoch;
 *  5. if some directory could not have rebuilt this state alone (new, damaged, behind),
 *     write a checkpoint of it everywhere so each directory is whole again.
 */
export function openMetaStore(dirs: string[], policy: CheckpointPolicy, onAllFailed: (err: Error) => void): MetaStore {
  const startupAlarms: string[] = [];
  const usable: string[] = [];
  for (const d of dirs) {
    try {
      acquireLock(d);
      usable.push(d);
    } catch (err) {
      if (err instanceof StartupError) throw err;
      const alarm = `metadata directory ${d} unusable at start-up: ${(err as Error).message}`;
      log.error(`ALARM: ${alarm}`);
      startupAlarms.push(alarm);
    }
  }
  if (usable.length === 0) throw new StartupError(`no usable metadata directory among ${dirs.join(', ')}`);

  const state = recover(usable);
  for (const note of state.notes) log.warn(note);
  for (const tail of state.tornTails) {
    log.warn(`cutting torn tail of ${tail.file} at offset ${tail.offset} (never acknowledged)`);
    try {
      truncateTornTail(tail);
    } catch (err) {
      log.error(`cannot cut torn tail of ${tail.file}: ${(err as Error).message}`);
    }
  }
  for (const file of state.rejectedCheckpoints) {
    log.error(`ALARM: checkpoint ${file} does not verify; kept aside as ${file}.corrupt`);
    fs.renameSync(file, `${file}.corrupt`);
  }
  const epoch = state.lastEpoch + 1;
  const writer = new LogWriter(usable, state.lastTxid, epoch, onAllFailed);
  let checkpointTxid = state.checkpointTxid;
  if (state.incompleteDirs.length > 0 || state.rejectedCheckpoints.length > 0) {
    log.warn(`repairing ${state.incompleteDirs.join(', ') || 'checkpoints'} with a checkpoint at txid ${state.lastTxid}`);
    for (const d of writer.healthyPaths()) {
      try {
        writeCheckpoint(d, state.ns, state.lastTxid, state.lastEpoch);
        purgeMetaDir(d);
      } catch (err) {
        writer.fail(d, err);
      }
    }
    checkpointTxid = state.lastTxid;
  }
  log.info(`recovered txid ${state.lastTxid} (checkpoint ${state.checkpointTxid}), ${state.ns.inodeCount} inodes; epoch ${epoch}`);
  const checkpointer = new Checkpointer(writer, policy, checkpointTxid);
  return {
    ns: state.ns,
    writer,
    checkpointer,
    epoch,
    startupAlarms,
    async close() {
      checkpointer.stop();
      await writer.close();
      usable.forEach(releaseLock);
    },
  };
}
