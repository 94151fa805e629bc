import * as fs from 'fs';
import * as path from 'path';
import { listMetaDir } from './meta-dir';

/** Checkpoints kept per directory: the newest, and one to fall back to if it rots. */
export const CHECKPOINTS_KEPT = 2;

/**
 * Removes what recovery can no longer need: checkpoints older than the kept ones, log
 * segments whose every record is covered by the older kept checkpoint, and leftover
 * temporary files. Returns the removed paths.
 */
export function purgeMetaDir(dir: string): string[] {
  const { segments, checkpoints } = listMetaDir(dir);
  if (checkpoints.length < CHECKPOINTS_KEPT) return [];
  const oldestKept = checkpoints[CHECKPOINTS_KEPT - 1].txid;
  const doomed = checkpoints.slice(CHECKPOINTS_KEPT).map((c) => c.path);
  segments.forEach((seg, i) => {
    const next = segments[i + 1];
    if (next && next.firstTxid - 1 <= oldestKept) doomed.push(seg.path);
  });
  for (const name of fs.readdirSync(dir)) if (name.endsWith('.tmp')) doomed.push(path.join(dir, name));
  for (const p of doomed) fs.rmSync(p, { force: true });
  return doomed;
}
