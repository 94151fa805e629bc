import { posix } from 'path';
import { FsError } from '../server/common/fs-error';

/** The kernel's number for the mount's root (FUSE_ROOT_ID); the master's root inode is 1 too. */
export const ROOT_INO = 1;

interface Node {
  /** Names the kernel was given for this inode, newest last (hard links have several). */
  names: Array<{ parent: number; name: string }>;
  /** Lookups the kernel holds (each entry reply adds one; forget takes them back). */
  lookups: number;
}

/**
 * The kernel speaks in inode numbers (the master's own), the client library in paths: this
 * remembers under which names the kernel learned each inode, so that an inode's path is its
 * parent's path plus its name, whatever was renamed above it since. An inode is forgotten when
 * the kernel forgets it.
 */
export class InodeNames {
  private readonly nodes = new Map<number, Node>();
  /** `${parent}/${name}` → the inode the kernel knows under that name. */
  private readonly byName = new Map<string, number>();

  /** Inodes known (the root aside). */
  get size(): number {
    return this.nodes.size;
  }

  /** The path of `ino`; ENOENT when it has no name left (unlinked while the kernel holds it). */
  path(ino: number): string {
    if (ino === ROOT_INO) return '/';
    const node = this.nodes.get(ino);
    const last = node?.names[node.names.length - 1];
    if (!last) throw new FsError(node ? 'ENOENT' : 'ESTALE', `inode ${ino} has no name here`);
    return posix.join(this.path(last.parent), last.name);
  }

  /** The path of `name` in directory `parent`. */
  child(parent: number, name: string): string {
    return posix.join(this.path(parent), name);
  }

  /** Whether `ino` has a name here (the root always has). */
  named(ino: number): boolean {
    return ino === ROOT_INO || (this.nodes.get(ino)?.names.length ?? 0) > 0;
  }

  /** Whether the kernel still holds `ino`. */
  knows(ino: number): boolean {
    return this.nodes.has(ino);
  }

  /** The directory `ino` was last named in (the root for itself and for inodes without a name). */
  parentOf(ino: number): number {
    const names = this.nodes.get(ino)?.names;
    return names?.[names.length - 1]?.parent ?? ROOT_INO;
  }

  /** The inode the kernel knows as `name` in `parent`, if any. */
  inodeAt(parent: number, name: string): number | undefined {
    return this.byName.get(key(parent, name));
  }

  /** The kernel was told that `name` in `parent` is `ino` (one more lookup it holds). */
  learned(ino: number, parent: number, name: string): void {
    if (ino === ROOT_INO) return;
    let node = this.nodes.get(ino);
    if (!node) {
      node = { names: [], lookups: 0 };
      this.nodes.set(ino, node);
    }
    node.lookups++;
    const k = key(parent, name);
    const before = this.byName.get(k);
    if (before !== ino) {
      if (before !== undefined) this.dropName(before, parent, name);
      this.byName.set(k, ino);
    }
    node.names = node.names.filter((n) => n.parent !== parent || n.name !== name);
    node.names.push({ parent, name });
  }

  forget(ino: number, lookups: number): void {
    const node = this.nodes.get(ino);
    if (!node) return;
    node.lookups -= lookups;
    if (node.lookups > 0) return;
    for (const n of node.names) this.byName.delete(key(n.parent, n.name));
    this.nodes.delete(ino);
  }

  /** `name` in `parent` is gone (unlink, rmdir, or the target of a rename). */
  removed(parent: number, name: string): void {
    const k = key(parent, name);
    const ino = this.byName.get(k);
    if (ino === undefined) return;
    this.byName.delete(k);
    this.dropName(ino, parent, name);
  }

  /** `name` in `parent` is now `newName` in `newParent` (what was there before is gone). */
  renamed(parent: number, name: string, newParent: number, newName: string): void {
    const ino = this.byName.get(key(parent, name));
    this.removed(newParent, newName);
    this.removed(parent, name);
    if (ino === undefined) return;
    const node = this.nodes.get(ino)!;
    node.names.push({ parent: newParent, name: newName });
    this.byName.set(key(newParent, newName), ino);
  }

  /** `name` in `parent` and `newName` in `newParent` swapped inodes (RENAME_EXCHANGE). */
  exchanged(parent: number, name: string, newParent: number, newName: string): void {
    const a = this.byName.get(key(parent, name));
    const b = this.byName.get(key(newParent, newName));
    this.removed(parent, name);
    this.removed(newParent, newName);
    for (const [ino, at, atName] of [[a, newParent, newName], [b, parent, name]] as const) {
      if (ino === undefined) continue;
      this.nodes.get(ino)!.names.push({ parent: at, name: atName });
      this.byName.set(key(at, atName), ino);
    }
  }

  private dropName(ino: number, parent: number, name: string): void {
    const node = this.nodes.get(ino);
    if (node) node.names = node.names.filter((n) => n.parent !== parent || n.name !== name);
  }
}

function key(parent: number, name: string): string {
  return `${parent}/${name}`;
}
