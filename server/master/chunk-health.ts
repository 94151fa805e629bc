import type { ChunkserverRegistry } from './chunkserver-registry';
import type { Inode } from './inode';
import { HOLE, UNWRITTEN, type Namespace } from './namespace';

export interface ChunkHealthCounts {
  /** chunks referenced by files */
  total: number;
  underReplicated: number;
  overReplicated: number;
  corrupt: number;
  /** no live replica at all */
  missing: number;
}

export function emptyCounts(): ChunkHealthCounts {
  return { total: 0, underReplicated: 0, overReplicated: 0, corrupt: 0, missing: 0 };
}

/**
 * Adds the chunks of `file` to `counts`, each classified by its live replicas (at the chunk's
 * current version, on live chunkservers, not reported corrupt) against the file's factor.
 * Replicas on decommissioning servers keep a chunk from being missing but do not count towards
 * its factor (see ChunkserverRegistry.replicasOf).
 * Unwritten chunks are holes until their first write: neither counted nor missing.
 */
export function countChunks(file: Inode, chunkservers: ChunkserverRegistry, replication: number, counts: ChunkHealthCounts): void {
  for (const c of file.chunks!) {
    if (c.handle === HOLE || c.version === UNWRITTEN) continue;
    counts.total++;
    const { live, counted, corrupt } = chunkservers.replicasOf(c.handle, c.version);
    if (corrupt) counts.corrupt++;
    if (live.length === 0) counts.missing++;
    else if (counted < replication) counts.underReplicated++;
    else if (counted > replication) counts.overReplicated++;
  }
}

/** Every chunk of every file. Walks the whole namespace: an operator's report, not a hot path. */
export function chunkHealth(ns: Namespace, chunkservers: ChunkserverRegistry): ChunkHealthCounts {
  const counts = emptyCounts();
  for (const { file } of ns.regularFiles()) countChunks(file, chunkservers, ns.replicationOf(file), counts);
  return counts;
}
