import { ChunkHealthCounts, countChunks, emptyCounts } from './chunk-health';
import type { ChunkserverRegistry } from './chunkserver-registry';
import type { Namespace } from './namespace';

/** What fsck finds (the shape of FsckResponse in proto/master.proto). */
export interface FsckResult {
  files: number;
  chunks: ChunkHealthCounts;
  unhealthy: Array<{ path: string; size: number; replication: number; chunks: ChunkHealthCounts }>;
  healthy: boolean;
}

/**
 * Per-file chunk health at or below `path`: the totals, and each file with any chunk under-
 * or over-replicated, corrupt or missing. Healthy means no chunk is missing (all data readable).
 */
export function fsck(ns: Namespace, chunkservers: ChunkserverRegistry, path: string): FsckResult {
  const total = emptyCounts();
  const unhealthy: FsckResult['unhealthy'] = [];
  let files = 0;
  for (const { path: p, file } of ns.regularFiles(path)) {
    files++;
    const mine = emptyCounts();
    const replication = ns.replicationOf(file);
    countChunks(file, chunkservers, replication, mine);
    add(total, mine);
    if (mine.underReplicated + mine.overReplicated + mine.corrupt + mine.missing > 0) {
      unhealthy.push({ path: p, size: file.size, replication, chunks: mine });
    }
  }
  return { files, chunks: total, unhealthy, healthy: total.missing === 0 };
}

function add(into: ChunkHealthCounts, more: ChunkHealthCounts): void {
  into.total += more.total;
  into.underReplicated += more.underReplicated;
  into.overReplicated += more.overReplicated;
  into.corrupt += more.corrupt;
  into.missing += more.missing;
}
