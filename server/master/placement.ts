import { FsError } from '../common/fs-error';
import { ChunkserverView } from './chunkserver-registry';

export interface PlacementOptions {
  /** Ids already holding the chunk (re-replication): never chosen, and their racks count as used. */
  exclude?: ReadonlySet<string>;
  /** A server with less free space than this is not chosen (bytes; e.g. one chunk size). */
  minFreeBytes?: number;
  /** Values in [0, 1); the only source of randomness, so tests can seed it. */
  random?: () => number;
}

/** In-flight calls that weigh as much as 50% disk utilisation in a server's score. */
const LOAD_HALF = 8;
/** Scores closer than this count as equal, so near-identical servers share a burst evenly. */
const SCORE_SLACK = 0.02;

/**
 * Chooses up to `want` distinct chunkservers for the replicas of a chunk (GFS section 4.2,
 * HDFS's default block placement): alive, in the normal state (not being decommissioned), not
 * in `exclude`, with at least `minFreeBytes` free, spread across racks, and leaning towards the emptier and less busy servers. Returns
 * fewer when fewer qualify (the caller marks the chunk under-replicated), [] when none does
 * (the caller answers ENOSPC). Pure: the same inputs and `random` sequence give the same answer.
 */
export function chooseReplicas(
  candidates: readonly ChunkserverView[],
  want: number,
  opts: PlacementOptions = {},
): ChunkserverView[] {
  if (!Number.isInteger(want) || want <= 0) throw new FsError('EINVAL', `replica count must be a positive integer, not ${want}`);
  const exclude = opts.exclude ?? new Set<string>();
  const minFree = opts.minFreeBytes ?? 0;
  const random = opts.random ?? Math.random;

  // Replicas per rack so far: the holders' racks count as used (the caller says they hold
  // the chunk, so their liveness is not ours to judge). A server listed twice is one server.
  const perRack = new Map<string, number>();
  const bump = (rack: string) => perRack.set(rack, (perRack.get(rack) ?? 0) + 1);
  const seen = new Set<string>();
  let eligible: ChunkserverView[] = [];
  for (const cs of candidates) {
    if (seen.has(cs.id)) continue;
    seen.add(cs.id);
    if (exclude.has(cs.id)) bump(cs.rack);
    else if (cs.alive && cs.state === 'normal' && cs.freeBytes >= minFree) eligible.push(cs);
  }
  const chosen: ChunkserverView[] = [];
  while (chosen.length < want && eligible.length > 0) {
    // Rack spread: only servers in the racks holding fewest replicas so far compete, so the
    // second replica leaves the first one's rack whenever another rack has room. Servers with
    // rack '' all share one default rack.
    const least = Math.min(...eligible.map((cs) => perRack.get(cs.rack) ?? 0));
    const pool = eligible.filter((cs) => (perRack.get(cs.rack) ?? 0) === least);
    const pick = powerOfTwo(pool, random);
    chosen.push(pick);
    bump(pick.rack);
    eligible = eligible.filter((cs) => cs !== pick);
  }
  return chosen;
}

/**
 * "Power of two choices" (Mitzenmacher): draw two distinct servers uniformly and keep the one
 * with the lower score. Always taking the single best server would pile a burst of new chunks
 * (placed before the next heartbeats update usage) onto one machine; two random draws keep
 * the burst spread (a server gets at most 2x its fair share) while still favouring emptier,
 * quieter servers, and the fullest server of the pool is chosen only when nothing else is left.
 */
function powerOfTwo(pool: readonly ChunkserverView[], random: () => number): ChunkserverView {
  const n = pool.length;
  const draw = (k: number) => Math.min(k - 1, Math.floor(random() * k));
  const i = draw(n);
  if (n === 1) return pool[i];
  let j = draw(n - 1);
  if (j >= i) j++;
  const [a, b] = [pool[i], pool[j]];
  return score(b) < score(a) - SCORE_SLACK ? b : a; // a tie keeps the first draw, itself random
}

/** Lower is better: disk utilisation in [0, 1] plus a load penalty in [0, 1). */
function score(cs: ChunkserverView): number {
  const utilisation = cs.capacityBytes > 0 ? Math.min(1, Math.max(0, cs.usedBytes / cs.capacityBytes)) : 1;
  const load = Math.max(0, cs.load);
  return utilisation + load / (load + LOAD_HALF);
}
