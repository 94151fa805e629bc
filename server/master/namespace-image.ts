import { ChunkRef, Inode } from './inode';
import { Namespace, newDir, ROOT_INO } from './namespace';

/**
 * The namespace as a flat list of entries, parents before children (pre-order), for
 * checkpoints. An inode appears once in full; further hard links to it are short entries.
 *
 *   full:  [ino, parentIno, name, mode, uid, gid, nlink, size, atimeMs, mtimeMs, ctimeMs, extra]
 *          extra = symlink target | file chunk list [[handle, version], ...] | null (directory)
 *   link:  [ino, parentIno, name]
 * The root is the first full entry, with parentIno 0 and name ''.
 */
export type ImageEntry =
  | [number, number, string, number, number, number, number, number, number, number, number, string | number[][] | null]
  | [number, number, string];

export interface ImageHeader {
  format: 1;
  lastIno: number;
  inodeCount: number;
}

export function imageHeader(ns: Namespace): ImageHeader {
  return { format: 1, lastIno: ns.lastIno, inodeCount: ns.inodeCount };
}

/** Walks the tree without recursion (trees can be deep). */
export function* imageEntries(ns: Namespace): Generator<ImageEntry> {
  const seenLinked = new Set<Inode>();
  const stack: Array<[Inode, number, string]> = [[ns.root, 0, '']];
  while (stack.length > 0) {
    const [n, parentIno, name] = stack.pop()!;
    if (n.nlink > 1 && !n.isDir) {
      if (seenLinked.has(n)) {
        yield [n.ino, parentIno, name];
        continue;
      }
      seenLinked.add(n);
    }
    const extra = n.isSymlink ? n.target : n.isFile ? n.chunks!.map((c) => [c.handle, c.version]) : null;
    yield [n.ino, parentIno, name, n.mode, n.uid, n.gid, n.nlink, n.size, n.atimeMs, n.mtimeMs, n.ctimeMs, extra];
    if (n.isDir) {
      // Push in reverse so that children come out in readdir order.
      const kids = [...n.children!];
      for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i][1], n.ino, kids[i][0]]);
    }
  }
}

/** Rebuilds a namespace from a header and entries; throws on any inconsistency. */
export class ImageLoader {
  private readonly ns = new Namespace();
  private readonly byIno = new Map<number, Inode>();
  private count = 0;

  constructor(private readonly header: ImageHeader) {
    if (header.format !== 1) throw new Error(`unknown image format ${String(header.format)}`);
  }

  add(e: ImageEntry): void {
    this.count++;
    if (e.length === 3) {
      const [ino, parentIno, name] = e;
      const target = this.byIno.get(ino);
      if (!target || target.isDir) throw new Error(`hard link to unknown inode ${ino}`);
      this.parent(parentIno).children!.set(name, target);
      return;
    }
    const [ino, parentIno, name, mode, uid, gid, nlink, size, atimeMs, mtimeMs, ctimeMs, extra] = e;
    const node =
      extra === null
        ? newDir(ino, 0, uid, gid, 0)
        : new Inode(ino, mode, uid, gid, 0, 0, 0, nlink, size, null,
            typeof extra === 'string' ? extra : null,
            typeof extra === 'string' ? null : extra.map(([handle, version]): ChunkRef => ({ handle, version })));
    node.mode = mode;
    node.nlink = nlink;
    node.size = size;
    node.atimeMs = atimeMs;
    node.mtimeMs = mtimeMs;
    node.ctimeMs = ctimeMs;
    if (ino === ROOT_INO) {
      if (parentIno !== 0 || this.count !== 1) throw new Error('root entry misplaced');
      this.ns.root = node;
    } else {
      this.parent(parentIno).children!.set(name, node);
    }
    this.byIno.set(ino, node);
  }

  finish(): Namespace {
    this.ns.lastIno = this.header.lastIno;
    this.ns.inodeCount = this.header.inodeCount;
    if (this.byIno.size !== this.header.inodeCount) {
      throw new Error(`image has ${this.byIno.size} inodes, header says ${this.header.inodeCount}`);
    }
    return this.ns;
  }

  private parent(ino: number): Inode {
    const p = this.byIno.get(ino);
    if (!p || !p.isDir) throw new Error(`entry refers to unknown parent directory ${ino}`);
    return p;
  }
}
