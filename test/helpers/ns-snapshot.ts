import { strict as assert } from 'assert';
import { Attr, attrOf, Inode } from '../../server/master/inode';
import type { Namespace } from '../../server/master/namespace';
import { xattrEntries } from '../../server/master/xattrs';

export interface SnapEntry {
  path: string;
  attr: Attr;
  target: string | null;
  /** The chunk list as 'handle:version,...' (files only). */
  chunks: string | null;
  /** Extended attributes as 'name=base64 value,...', in their order. */
  xattrs: string | null;
}

/** Everything observable about a namespace: every path (in readdir order) with its attrs. */
export interface Snapshot {
  inodeCount: number;
  lastIno: number;
  lastHandle: number;
  entries: SnapEntry[];
}

export function join(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

export function snapshot(ns: Namespace): Snapshot {
  const entries: SnapEntry[] = [];
  // Pre-order without recursion (trees may be deeper than the stack): children in readdir order.
  const stack: Array<[string, Inode]> = [['/', ns.root]];
  while (stack.length > 0) {
    const [path, node] = stack.pop()!;
    entries.push({
      path, attr: attrOf(node), target: node.target,
      chunks: node.chunks ? node.chunks.map((c) => `${c.handle}:${c.version}`).join(',') : null,
      xattrs: node.xattrs ? xattrEntries(node).map(([name, value]) => `${name}=${value.toString('base64')}`).join(',') : null,
    });
    if (node.children) {
      const kids = [...node.children];
      for (let i = kids.length - 1; i >= 0; i--) stack.push([join(path, kids[i][0]), kids[i][1]]);
    }
  }
  return { inodeCount: ns.inodeCount, lastIno: ns.lastIno, lastHandle: ns.lastHandle, entries };
}

const ATTR_KEYS: ReadonlyArray<keyof Attr> = ['ino', 'mode', 'uid', 'gid', 'nlink', 'size', 'atimeMs', 'mtimeMs', 'ctimeMs', 'replication', 'hasXattrs'];

/** deepStrictEqual on snapshots, with a fast path (deepStrictEqual is slow on big trees). */
export function assertSameSnapshot(actual: Snapshot, expected: Snapshot, message?: string): void {
  let same = actual.inodeCount === expected.inodeCount && actual.lastIno === expected.lastIno && actual.lastHandle === expected.lastHandle &&
    actual.entries.length === expected.entries.length;
  for (let i = 0; same && i < actual.entries.length; i++) {
    const a = actual.entries[i];
    const e = expected.entries[i];
    same = a.path === e.path && a.target === e.target && a.chunks === e.chunks && a.xattrs === e.xattrs &&
      ATTR_KEYS.every((k) => Object.is(a.attr[k], e.attr[k]));
  }
  if (!same) assert.deepStrictEqual(actual, expected, message);
}

