import type { ChunkserverState } from './chunkserver-states';
import { Inode } from './inode';
import { Namespace, ROOT_INO } from './namespace';
import { loadXattrs } from './xattrs';

/**
 * The namespace as a flat list of entries for checkpoints (encoded by image-codec.ts): the
 * root first, parents before children (pre-order), each directory's entries in readdir order.
 * An inode appears once in full; further hard links to it are short link entries.
 */
export const IMAGE_FORMAT = 5;
/**
 * Formats this code reads: 2 lacks files' replication factors, 2 and 3 special files, 2 to 4
 * extended attributes (see image-codec.ts).
 */
const READABLE_FORMATS: readonly number[] = [2, 3, 4, IMAGE_FORMAT];

export interface ImageHeader {
  format: number;
  lastIno: number;
  /** Highest chunk handle ever handed out. */
  lastHandle: number;
  inodeCount: number;
  /** Chunkservers not in the normal state (absent in images written before decommissioning). */
  chunkserverStates?: Record<string, ChunkserverState>;
}

export function imageHeader(ns: Namespace): ImageHeader {
  return {
    format: IMAGE_FORMAT, lastIno: ns.lastIno, lastHandle: ns.lastHandle, inodeCount: ns.inodeCount,
    chunkserverStates: ns.chunkserverStates.toJSON(),
  };
}

/** Throws unless `header` (parsed from a file, so possibly anything) describes an image this code reads. */
export function checkImageHeader(header: ImageHeader): void {
  if (!READABLE_FORMATS.includes(header?.format)) throw new Error(`unknown image format ${String(header?.format)}`);
}

export type ImageVisitor = (node: Inode, parentIno: number, name: string, isLink: boolean) => void;

/**
 * Visits the entries in image order; `isLink` marks a further hard link to an inode visited in
 * full before. Iterative, with one children iterator per level, since trees can be deep.
 */
export function walkImage(ns: Namespace, visit: ImageVisitor): void {
  const seenLinked = new Set<Inode>();
  const dirs: Inode[] = [ns.root];
  const levels: Array<Iterator<[string, Inode]>> = [ns.root.children!.entries()];
  visit(ns.root, 0, '', false);
  while (levels.length > 0) {
    const next = levels[levels.length - 1].next();
    if (next.done) {
      levels.pop();
      dirs.pop();
      continue;
    }
    const [name, node] = next.value;
    const parentIno = dirs[dirs.length - 1].ino;
    if (node.nlink > 1 && !node.isDir) {
      if (seenLinked.has(node)) {
        visit(node, parentIno, name, true);
        continue;
      }
      seenLinked.add(node);
    }
    visit(node, parentIno, name, false);
    if (node.isDir) {
      dirs.push(node);
      levels.push(node.children!.entries());
    }
  }
}

/** Rebuilds a namespace from a header and entries in image order; throws on any inconsistency. */
export class ImageLoader {
  private readonly ns = new Namespace();
  /** Directories and multiply-linked inodes: the only ones a later entry can refer to. */
  private readonly byIno = new Map<number, Inode>();
  private inodes = 0;
  /** The inode of the last full entry: extended attributes come right after it. */
  private last: Inode | null = null;

  constructor(private readonly header: ImageHeader) {
    checkImageHeader(header);
  }

  /** The image format being loaded: the entry encoding depends on it. */
  get format(): number {
    return this.header.format;
  }

  /** An inode in full, linked into its parent directory. */
  addInode(node: Inode, parentIno: number, name: string): void {
    if (node.ino === ROOT_INO) {
      if (parentIno !== 0 || this.inodes !== 0 || !node.isDir) throw new Error('root entry misplaced');
      this.ns.root = node;
    } else {
      this.parent(parentIno).children!.set(name, node);
    }
    this.inodes++;
    this.last = node;
    if (node.isDir || node.nlink > 1) this.byIno.set(node.ino, node);
  }

  /** The extended attributes of the inode added just before. */
  addXattrs(ino: number, xattrs: ReadonlyArray<readonly [string, Buffer]>): void {
    if (this.last?.ino !== ino || this.last.xattrs) throw new Error(`extended attributes of inode ${ino} out of place`);
    loadXattrs(this.last, xattrs);
  }

  /** A further hard link to an inode added before. */
  addLink(ino: number, parentIno: number, name: string): void {
    const target = this.byIno.get(ino);
    if (!target || target.isDir) throw new Error(`hard link to unknown inode ${ino}`);
    this.parent(parentIno).children!.set(name, target);
  }

  finish(): Namespace {
    if (this.inodes !== this.header.inodeCount) {
      throw new Error(`image has ${this.inodes} inodes, header says ${this.header.inodeCount}`);
    }
    this.ns.lastIno = this.header.lastIno;
    this.ns.lastHandle = this.header.lastHandle;
    this.ns.inodeCount = this.header.inodeCount;
    this.ns.chunkserverStates.load(this.header.chunkserverStates);
    return this.ns;
  }

  private parent(ino: number): Inode {
    const p = this.byIno.get(ino);
    if (!p || !p.isDir) throw new Error(`entry refers to unknown parent directory ${ino}`);
    return p;
  }
}
