import { StartupError } from '../../common/startup-error';
import { Namespace } from '../namespace';
import type { Mutation } from '../mutation';
import { MAX_KEYS, retryKeyOf } from '../retry-keys';
import { readCheckpoint, verifyCheckpoint } from './checkpoint-file';
import { DirLog, LogDamage, readDirLog, TornTail } from './log-reader';
import { listMetaDir } from './meta-dir';

export interface RecoveryResult {
  ns: Namespace;
  lastTxid: number;
  /** Epoch of the last record (or of the checkpoint when no record follows it). */
  lastEpoch: number;
  /** The checkpoint the state was built from (0: none, built from the log alone). */
  checkpointTxid: number;
  /** Directories that could not rebuild this state on their own: a fresh checkpoint repairs them. */
  incompleteDirs: string[];
  tornTails: TornTail[];
  /** Checkpoint files that failed verification (to be set aside so purge never counts them). */
  rejectedCheckpoints: string[];
  /** What was skipped or fallen back from, for the start-up log. */
  notes: string[];
}

/** No consistent state can be built; the message names the files and offsets at fault. */
export class RecoveryError extends StartupError {
  override name = 'RecoveryError';
}

export interface RecoveryOptions {
  /** Stop at exactly this txid (checkpointing) instead of at the end of the log. */
  upToTxid?: number;
  /**
   * Read back the retry keys of records a checkpoint covers (default true): a master serving
   * calls needs them, a checkpoint (which keeps none) does not.
   */
  retryKeys?: boolean;
}

/**
 * Rebuilds the namespace from the metadata directories: the newest checkpoint of which some
 * copy verifies, then every later record in txid order, each taken from any directory that
 * has it intact. Damage is never skipped: if a txid is missing everywhere while later records
 * exist, recovery refuses with the places of the damage rather than lose acknowledged work.
 * Reads only; the caller acts on tornTails and incompleteDirs.
 */
export function recover(dirs: string[], opts: RecoveryOptions = {}): RecoveryResult {
  const upTo = opts.upToTxid ?? Infinity;
  const listings = dirs.map((d) => listMetaDir(d));
  const candidates = [...new Set(listings.flatMap((l) => l.checkpoints.map((c) => c.txid)))]
    .filter((t) => t <= upTo)
    .sort((a, b) => b - a);
  candidates.push(0); // last resort: the empty namespace plus the whole log
  const logs = dirs.map((d) => readDirLog(d, 0, upTo));
  const notes: string[] = [];
  const rejectedCheckpoints: string[] = [];

  for (const ckptTxid of candidates) {
    let ns: Namespace | null = null;
    let epoch = 0;
    if (ckptTxid === 0) {
      ns = new Namespace();
    } else {
      for (const l of listings) {
        const copy = l.checkpoints.find((c) => c.txid === ckptTxid);
        if (!copy) continue;
        try {
          ({ ns, epoch } = readCheckpoint(copy.path));
          break;
        } catch (err) {
          notes.push(`checkpoint copy rejected: ${(err as Error).message}`);
          rejectedCheckpoints.push(copy.path);
        }
      }
      if (!ns) continue; // try the previous checkpoint with a longer log
    }
    if (opts.retryKeys ?? true) rememberRetryKeys(ns, logs, ckptTxid);
    const { lastTxid, lastEpoch } = replay(ns, logs, ckptTxid, upTo, epoch);
    if (upTo !== Infinity && lastTxid < upTo) {
      throw new RecoveryError(`the log ends at txid ${lastTxid}, before ${upTo}; ${describeHole(logs, lastTxid)}`);
    }
    if (upTo === Infinity && logs.some((l) => l.maxTxid > lastTxid)) {
      throw new RecoveryError(
        `records after txid ${lastTxid} exist but txid ${lastTxid + 1} is unreadable in every metadata directory; ` +
          `${describeHole(logs, lastTxid)}. Refusing to start rather than lose acknowledged changes.`,
      );
    }
    const incompleteDirs = dirs.filter((_dir, i) => !selfSufficient(listings[i].checkpoints, logs[i], ckptTxid, lastTxid));
    for (const l of logs) for (const d of l.damage) notes.push(`damaged log in ${d.file} at offset ${d.offset} (${d.reason}); covered by another directory`);
    return {
      ns,
      lastTxid,
      lastEpoch,
      checkpointTxid: ckptTxid,
      incompleteDirs,
      rejectedCheckpoints,
      tornTails: logs.flatMap((l) => (l.tornTail ? [l.tornTail] : [])),
      notes,
    };
  }
  throw new RecoveryError(`no consistent metadata state: ${notes.join('; ')}`);
}

/**
 * The retry keys of the records up to `ckptTxid` still in the log (those a checkpoint covers,
 * and which a checkpoint does not keep): a repeat of one of these changes is recognised too.
 */
function rememberRetryKeys(ns: Namespace, logs: DirLog[], ckptTxid: number): void {
  for (let t = Math.max(1, ckptTxid - MAX_KEYS + 1); t <= ckptTxid; t++) {
    const rec = logs.map((l) => l.records.get(t)).find((r) => r !== undefined);
    const key = rec && retryKeyOf(rec.payload.toString());
    if (key !== undefined) ns.retryKeys.add(key);
  }
}

function replay(ns: Namespace, logs: DirLog[], fromTxid: number, upTo: number, epoch: number) {
  let t = fromTxid + 1;
  let lastEpoch = epoch;
  for (; t <= upTo; t++) {
    const rec = logs.map((l) => l.records.get(t)).find((r) => r !== undefined);
    if (!rec) break;
    try {
      ns.apply(JSON.parse(rec.payload.toString()) as Mutation);
    } catch (err) {
      throw new RecoveryError(`${rec.file} offset ${rec.offset}: txid ${t} cannot be replayed: ${(err as Error).message}`);
    }
    lastEpoch = rec.epoch;
  }
  return { lastTxid: t - 1, lastEpoch };
}

function describeHole(logs: DirLog[], lastGood: number): string {
  const damage: LogDamage[] = logs.flatMap((l) => l.damage).filter((d) => d.afterTxid <= lastGood);
  if (damage.length > 0) {
    return damage.map((d) => `${d.file} offset ${d.offset}: ${d.reason} (after txid ${d.afterTxid})`).join('; ');
  }
  const ahead = logs.filter((l) => l.maxTxid > lastGood).map((l) => `${l.dir} has records up to ${l.maxTxid}`);
  return `txid ${lastGood + 1} is in no log file${ahead.length ? ` (${ahead.join(', ')})` : ''}`;
}

/** Could this directory alone rebuild the state at `lastTxid` from checkpoint `ckptTxid`? */
function selfSufficient(
  checkpoints: { path: string; txid: number }[],
  log: DirLog,
  ckptTxid: number,
  lastTxid: number,
): boolean {
  if (ckptTxid > 0) {
    const copy = checkpoints.find((c) => c.txid === ckptTxid);
    if (!copy || !verifyCheckpoint(copy.path)) return false;
  }
  for (let t = ckptTxid + 1; t <= lastTxid; t++) if (!log.records.has(t)) return false;
  return true;
}
