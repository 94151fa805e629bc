import type { Inode } from '../../server/master/inode';
import type { Namespace } from '../../server/master/namespace';

/** path -> every attribute (plus symlink target), and the namespace counters: for deep equality. */
export interface NsSnapshot {
  lastIno: number;
  inodeCount: number;
  entries: Record<string, string>;
}

export function snapshot(ns: Namespace): NsSnapshot {
  const entries: Record<string, string> = {};
  const stack: Array<[string, Inode]> = [['/', ns.root]];
  while (stack.length > 0) {
    const [p, n] = stack.pop()!;
    entries[p] = JSON.stringify([n.ino, n.mode, n.uid, n.gid, n.nlink, n.size, n.atimeMs, n.mtimeMs, n.ctimeMs, n.target]);
    if (n.children) for (const [name, child] of n.children) stack.push([p === '/' ? `/${name}` : `${p}/${name}`, child]);
  }
  return { lastIno: ns.lastIno, inodeCount: ns.inodeCount, entries };
}
