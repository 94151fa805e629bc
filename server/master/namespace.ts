import { FsError } from '../common/fs-error';
import { MAX_LISTING_PAGE } from '../common/dir-listing';
import { isRawName, rawLength } from '../common/raw-names';
import {
  Attr,
  attrOf,
  type ChunkRef,
  DIR_SIZE,
  Inode,
  PERMISSION_BITS,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_ISGID,
  S_ISUID,
  S_IXGRP,
  SPECIAL_TYPES,
} from './inode';
import type {
  AddChunkMutation,
  SetChunkVersionMutation,
  CreateMutation,
  LinkMutation,
  MkdirMutation,
  MknodMutation,
  Mutation,
  RenameMutation,
  RemoveXattrMutation,
  RmdirMutation,
  SetattrMutation,
  SetXattrMutation,
  SetReplicationMutation,
  SymlinkMutation,
  UnlinkMutation,
} from './mutation';
import { ChunkserverStates } from './chunkserver-states';
import { isSameOrBelow, MAX_TARGET_BYTES, splitPath } from './paths';
import { ReaddirCursors } from './readdir-cursors';
import { RetryKeys } from './retry-keys';
import { checkOwnerId, checkReplication, DEFAULT_REPLICATION } from './request-checks';
import { getXattr, listXattrs, removeXattr, setXattr } from './xattrs';

export const ROOT_INO = 1;
/** Chunk handle of a hole in a file's chunk list (never a real chunk). */
export const HOLE = 0;
/** The one slot every hole in every chunk list shares (a file may have 2^18 of them). */
export const HOLE_REF: ChunkRef = Object.freeze({ handle: HOLE, version: 0 });
/**
 * The version of a chunk placed but not written yet: its replicas are created by its first
 * write, confirmed in the log (version 1) before that write is acknowledged. So a chunk at this
 * version never had a write acknowledged: it reads as a hole and may be placed again.
 */
export const UNWRITTEN = 0;

export interface DirEntry {
  name: string;
  attr: Attr;
}

export interface ReaddirPage {
  entries: DirEntry[];
  /** Pass back to continue; '' when the listing is complete. */
  cookie: string;
}

/**
 * The whole file-system tree in memory, path-addressed (the FUSE high-level API and the CLI
 * both speak paths). Reads never change anything. apply() validates a mutation completely
 * before touching any state, so a rejected mutation changes nothing, and it is deterministic
 * (see mutation.ts) so that log replay rebuilds exactly the same tree.
 */
export class Namespace {
  root: Inode;
  /** Highest inode number ever handed out (never reused). */
  lastIno = ROOT_INO;
  /** Highest chunk handle reserved or used (never reused; 0 marks a hole in a chunk list). */
  lastHandle = 0;
  /** Live inodes, for statfs. */
  inodeCount = 1;
  /**
   * The cluster's default replication factor (the master's --replication). Configuration, not
   * state: never logged, it only stands in for files whose factor was never recorded.
   */
  defaultReplication = DEFAULT_REPLICATION;
  /** Operators' decommissioning decisions: logged and checkpointed with the tree. */
  readonly chunkserverStates = new ChunkserverStates();
  /** Retry keys of the latest changes (not in checkpoints: recovery reads them from the log). */
  readonly retryKeys = new RetryKeys();
  private readonly cursors = new ReaddirCursors();

  constructor(rootTime = 0) {
    this.root = newDir(ROOT_INO, 0o755, 0, 0, rootTime);
  }

  // ------------------------------------------------------------------ reads

  getattr(path: string): Attr {
    return this.attr(this.resolve(splitPath(path)));
  }

  /** The inode at `path`, or null when it does not exist (other errors still throw). */
  lookupOrNull(path: string): Inode | null {
    const parts = splitPath(path);
    if (parts.length === 0) return this.root;
    const parent = this.resolveDir(parts, parts.length - 1);
    return parent.children!.get(parts[parts.length - 1]) ?? null;
  }

  /**
   * A call for an open file: `path` still names inode `ino`, or ESTALE (a rename moved the file,
   * or gave its name to another, since the caller looked at its name; a directory on the way
   * gone counts alike).
   */
  expectIno(path: string, ino: number): void {
    const found = this.inoAt(path);
    if (found !== ino) throw new FsError('ESTALE', `${path} is ${found === undefined ? 'gone' : `inode ${found}`}, not inode ${ino}`);
  }

  /** The inode number `path` names, or undefined when it names none (a directory on the way gone counts alike). */
  private inoAt(path: string): number | undefined {
    try {
      return this.lookupOrNull(path)?.ino;
    } catch (err) {
      if (!(err instanceof FsError)) throw err;
      return undefined;
    }
  }

  /**
   * A name inode `ino` has now (any of a file's links): `hint` when it still names it, else
   * found by a walk of the whole tree (tens of milliseconds at a million inodes), which only
   * an open file another client renamed asks for, once per rename; null when none has it.
   */
  locate(ino: number, hint: string): string | null {
    if (this.inoAt(hint) === ino) return hint;
    const dirs: Array<[Inode, string]> = [[this.root, '']];
    for (let next = dirs.pop(); next; next = dirs.pop()) {
      const [dir, path] = next;
      for (const [name, child] of dir.children!) {
        if (child.ino === ino) return `${path}/${name}`;
        if (child.isDir) dirs.push([child, `${path}/${name}`]);
      }
    }
    return null;
  }

  readlink(path: string): string {
    const n = this.resolve(splitPath(path));
    if (!n.isSymlink) throw new FsError('EINVAL', `not a symbolic link: ${path}`);
    return n.target!;
  }

  /** The value of extended attribute `name` of the inode at `path` (ENODATA: it has none). */
  getxattr(path: string, name: string): Buffer {
    return getXattr(this.resolve(splitPath(path)), name);
  }

  listxattrs(path: string): string[] {
    return listXattrs(this.resolve(splitPath(path)));
  }

  readdir(path: string, cookie: string, limit: number): ReaddirPage {
    const { children, cookie: next } = this.readdirChildren(path, cookie, limit);
    return { entries: children.map(([name, child]) => ({ name, attr: this.attr(child) })), cookie: next };
  }

  /**
   * A page of the listing of `path` as its children themselves: what a listing on the wire is
   * encoded from (an Attr object per entry cost 1.7 ms per 1,000 in cold code).
   */
  readdirChildren(path: string, cookie: string, limit: number): { children: Array<[string, Inode]>; cookie: string } {
    const dir = this.resolve(splitPath(path));
    if (!dir.isDir) throw new FsError('ENOTDIR', `not a directory: ${path}`);
    const max = Math.max(1, Math.min(Math.floor(limit) || 1000, MAX_LISTING_PAGE));
    const it = this.cursors.take(dir, cookie);
    const children: Array<[string, Inode]> = [];
    for (let r = it.next(); !r.done; r = it.next()) {
      children.push(r.value);
      if (children.length >= max) {
        // A listing that ends with the page says so: no round trip for an empty last page.
        const next = it.next();
        return { children, cookie: next.done ? '' : this.cursors.park(dir, r.value, resumeWith(dir, next.value, it)) };
      }
    }
    return { children, cookie: '' };
  }

  /** Attributes as the master hands them out. */
  attr(n: Inode): Attr {
    return attrOf(n, this.defaultReplication);
  }

  /** Replicas each chunk of `file` should have. */
  replicationOf(file: Inode): number {
    return file.replication || this.defaultReplication;
  }

  /**
   * Every regular file at or below `path` once (hard links share one inode: the first path
   * found names it), without recursion.
   */
  *regularFiles(path = '/'): Generator<{ path: string; file: Inode }> {
    const seen = new Set<Inode>();
    const stack: Array<[string, Inode]> = [[path, this.resolve(splitPath(path))]];
    while (stack.length > 0) {
      const [p, n] = stack.pop()!;
      if (n.children) {
        for (const [name, child] of n.children) stack.push([p === '/' ? `/${name}` : `${p}/${name}`, child]);
      } else if (n.isFile && !seen.has(n)) {
        seen.add(n);
        yield { path: p, file: n };
      }
    }
  }

  // ------------------------------------------------------------------ mutations

  /**
   * Validates and applies one mutation; returns the affected inode's attributes, if any. Its
   * retry key is remembered (retry-keys.ts); repeats are refused before they get here (a
   * replay applies whatever was logged).
   */
  apply(m: Mutation): Attr | null {
    const attr = this.applyOne(m);
    if ('retryKey' in m && m.retryKey !== undefined) this.retryKeys.add(m.retryKey);
    return attr;
  }

  private applyOne(m: Mutation): Attr | null {
    switch (m.op) {
      case 'mkdir':
        return this.mkdir(m);
      case 'create':
        return this.create(m);
      case 'symlink':
        return this.symlink(m);
      case 'mknod':
        return this.mknod(m);
      case 'link':
        return this.link(m);
      case 'unlink':
        return this.unlink(m);
      case 'rmdir':
        return this.rmdir(m);
      case 'rename':
        return this.rename(m);
      case 'setattr':
        return this.setattr(m);
      case 'setReplication':
        return this.setReplication(m);
      case 'setXattr':
        return this.setXattr(m);
      case 'removeXattr':
        return this.removeXattr(m);
      case 'addChunk':
        return this.addChunk(m);
      case 'setChunkVersion':
        return this.setChunkVersion(m);
      case 'reserveHandles':
        if (!Number.isSafeInteger(m.upTo) || m.upTo < 0) throw new FsError('EINVAL', `bad handle reservation ${m.upTo}`);
        this.lastHandle = Math.max(this.lastHandle, m.upTo);
        return null;
      case 'setChunkserverState':
        this.chunkserverStates.apply(m);
        return null;
    }
  }

  private mkdir(m: MkdirMutation): Attr {
    const { parent, name } = this.freeSlot(m.path);
    let mode = m.mode & 0o1777; // mkdir(2) ignores set-id bits in its mode argument
    let gid = m.gid;
    if (parent.mode & S_ISGID) {
      mode |= S_ISGID; // BSD group semantics inherited through set-gid directories
      gid = parent.gid;
    }
    const dir = newDir(m.ino, mode, m.uid, gid, m.time);
    this.attach(parent, name, dir, m.time);
    parent.nlink++;
    return this.attr(dir);
  }

  private create(m: CreateMutation): Attr {
    if (m.replication !== undefined) checkReplication(m.replication);
    const { parent, name } = this.freeSlot(m.path);
    const gid = parent.mode & S_ISGID ? parent.gid : m.gid;
    const file = new Inode(m.ino, S_IFREG | (m.mode & PERMISSION_BITS), m.uid, gid,
      m.time, m.time, m.time, 1, 0, null, null, [], m.replication ?? 0);
    this.attach(parent, name, file, m.time);
    return this.attr(file);
  }

  private symlink(m: SymlinkMutation): Attr {
    if (m.target.length === 0) throw new FsError('ENOENT', 'empty symlink target');
    const bytes = rawLength(m.target); // also its size, as lstat(2) shows it
    if (bytes >= MAX_TARGET_BYTES) throw new FsError('ENAMETOOLONG', `symlink target of ${bytes} bytes`);
    if (m.target.includes('\0')) throw new FsError('EINVAL', 'NUL byte in symlink target');
    if (!isRawName(m.target)) throw new FsError('EINVAL', 'symlink target stands for the bytes of another (common/raw-names.ts)');
    const { parent, name } = this.freeSlot(m.path);
    const gid = parent.mode & S_ISGID ? parent.gid : m.gid;
    const link = new Inode(m.ino, S_IFLNK | 0o777, m.uid, gid,
      m.time, m.time, m.time, 1, bytes, null, m.target, null);
    this.attach(parent, name, link, m.time);
    return this.attr(link);
  }

  private mknod(m: MknodMutation): Attr {
    if (!Number.isInteger(m.mode) || m.mode < 0 || (m.mode & ~(S_IFMT | PERMISSION_BITS)) !== 0) throw new FsError('EINVAL', `bad mode 0o${m.mode.toString(8)}`);
    if (!SPECIAL_TYPES.includes(m.mode & S_IFMT)) throw new FsError('EINVAL', `mknod of type 0o${(m.mode & S_IFMT).toString(8)}: only FIFOs, sockets and devices`);
    if (!Number.isInteger(m.rdev) || m.rdev < 0 || m.rdev > 0xffffffff) throw new FsError('EINVAL', `bad device number ${m.rdev}`);
    const { parent, name } = this.freeSlot(m.path);
    const gid = parent.mode & S_ISGID ? parent.gid : m.gid;
    const isDevice = (m.mode & S_IFMT) === S_IFCHR || (m.mode & S_IFMT) === S_IFBLK;
    const node = new Inode(m.ino, m.mode, m.uid, gid,
      m.time, m.time, m.time, 1, 0, null, null, null, 0, isDevice ? m.rdev : 0);
    this.attach(parent, name, node, m.time);
    return this.attr(node);
  }

  private link(m: LinkMutation): Attr {
    const target = this.resolve(splitPath(m.existing));
    const { parent, name } = this.freeSlot(m.path); // Linux reports EEXIST before EPERM
    if (target.isDir) throw new FsError('EPERM', `cannot hard-link a directory: ${m.existing}`);
    if (target.nlink >= 0xffff) throw new FsError('EMLINK', `too many links: ${m.existing}`);
    parent.children!.set(name, target);
    touchDir(parent, m.time);
    target.nlink++;
    target.ctimeMs = m.time;
    return this.attr(target);
  }

  private unlink(m: UnlinkMutation): null {
    if (m.path === '/') throw new FsError('EISDIR', 'the root is a directory');
    const { parent, name, node } = this.existing(m.path);
    if (node.isDir) throw new FsError('EISDIR', `is a directory: ${m.path}`);
    parent.children!.delete(name);
    touchDir(parent, m.time);
    this.dropLink(node, m.time);
    return null;
  }

  private rmdir(m: RmdirMutation): null {
    const parts = splitPath(m.path);
    if (parts.length === 0) throw new FsError('EBUSY', 'cannot remove the root directory');
    const { parent, name, node } = this.existing(m.path);
    if (!node.isDir) throw new FsError('ENOTDIR', `not a directory: ${m.path}`);
    if (node.children!.size > 0) throw new FsError('ENOTEMPTY', `directory not empty: ${m.path}`);
    parent.children!.delete(name);
    parent.nlink--;
    touchDir(parent, m.time);
    node.nlink = 0;
    this.inodeCount--;
    return null;
  }

  /**
   * rename(2): atomic, replaces a compatible target, refuses moving a directory below itself.
   * With `exchange` (renameat2's RENAME_EXCHANGE) both names must exist and swap inodes.
   */
  private rename(m: RenameMutation): null {
    const fromParts = splitPath(m.from);
    const toParts = splitPath(m.to);
    if (fromParts.length === 0 || toParts.length === 0) {
      throw new FsError('EBUSY', 'cannot rename the root directory');
    }
    const src = this.existing(m.from);
    const dstParent = this.resolveDir(toParts, toParts.length - 1);
    const dstName = toParts[toParts.length - 1];
    const dst = dstParent.children!.get(dstName) ?? null;
    if (m.exchange && !dst) throw new FsError('ENOENT', `no such file or directory: ${m.to}`);
    if (dst === src.node) return null; // same file (or hard links to it): POSIX says do nothing
    if (src.node.isDir && isSameOrBelow(toParts, fromParts)) {
      throw new FsError('EINVAL', `cannot move ${m.from} into its own subtree ${m.to}`);
    }
    if (m.exchange) {
      if (dst!.isDir && isSameOrBelow(fromParts, toParts)) {
        throw new FsError('EINVAL', `cannot move ${m.to} into its own subtree ${m.from}`);
      }
      this.exchange(src.parent, src.name, src.node, dstParent, dstName, dst!, m.time);
      return null;
    }
    if (dst) {
      if (src.node.isDir && !dst.isDir) throw new FsError('ENOTDIR', `not a directory: ${m.to}`);
      if (!src.node.isDir && dst.isDir) throw new FsError('EISDIR', `is a directory: ${m.to}`);
      if (dst.isDir && dst.children!.size > 0) throw new FsError('ENOTEMPTY', `directory not empty: ${m.to}`);
    }
    // Validation done: from here on nothing throws.
    src.parent.children!.delete(src.name);
    if (dst) {
      dstParent.children!.delete(dstName);
      if (dst.isDir) {
        dstParent.nlink--;
        dst.nlink = 0;
        this.inodeCount--;
      } else {
        this.dropLink(dst, m.time);
      }
    }
    dstParent.children!.set(dstName, src.node);
    if (src.node.isDir && src.parent !== dstParent) {
      src.parent.nlink--;
      dstParent.nlink++;
    }
    touchDir(src.parent, m.time);
    touchDir(dstParent, m.time);
    src.node.ctimeMs = m.time;
    return null;
  }

  /** The swap of a RENAME_EXCHANGE, validated: a directory moving to the other parent takes its `..` link along. */
  private exchange(aParent: Inode, aName: string, a: Inode, bParent: Inode, bName: string, b: Inode, time: number): void {
    aParent.children!.set(aName, b);
    bParent.children!.set(bName, a);
    if (aParent !== bParent && a.isDir !== b.isDir) {
      const [gains, loses] = a.isDir ? [bParent, aParent] : [aParent, bParent];
      gains.nlink++;
      loses.nlink--;
    }
    touchDir(aParent, time);
    touchDir(bParent, time);
    a.ctimeMs = time;
    b.ctimeMs = time;
  }

  private setattr(m: SetattrMutation): Attr {
    const node = this.resolve(splitPath(m.path));
    if (m.size !== undefined) {
      if (node.isDir) throw new FsError('EISDIR', `is a directory: ${m.path}`);
      if (!node.isFile) throw new FsError('EINVAL', `not a regular file: ${m.path}`);
      if (!Number.isSafeInteger(m.size) || m.size < 0) throw new FsError('EINVAL', `bad size ${m.size}`);
      if (m.chunkSize !== undefined && !(Number.isSafeInteger(m.chunkSize) && m.chunkSize > 0)) {
        throw new FsError('EINVAL', `bad chunk size ${m.chunkSize}`);
      }
    }
    if (m.uid !== undefined) checkOwnerId(m.uid);
    if (m.gid !== undefined) checkOwnerId(m.gid);
    if (m.mode !== undefined) node.mode = (node.mode & ~PERMISSION_BITS) | (m.mode & PERMISSION_BITS);
    if (m.uid !== undefined || m.gid !== undefined) {
      if (m.uid !== undefined) node.uid = m.uid;
      if (m.gid !== undefined) node.gid = m.gid;
      if (!node.isDir) {
        // chown(2) on Linux drops set-user-ID, and set-group-ID when group-executable.
        node.mode &= ~S_ISUID;
        if (node.mode & S_IXGRP) node.mode &= ~S_ISGID;
      }
    }
    if (m.size !== undefined && m.growOnly) {
      node.size = Math.max(node.size, m.size);
      node.mtimeMs = m.time;
    } else if (m.size !== undefined) {
      node.size = m.size;
      node.mtimeMs = m.time;
      // Chunks wholly past the end go (their replicas become orphans for the chunk collector).
      if (m.chunkSize) node.chunks!.length = Math.min(node.chunks!.length, Math.ceil(m.size / m.chunkSize));
    }
    if (m.atimeMs !== undefined) node.atimeMs = m.atimeMs;
    if (m.mtimeMs !== undefined) node.mtimeMs = m.mtimeMs;
    node.ctimeMs = m.time;
    return this.attr(node);
  }

  private setReplication(m: SetReplicationMutation): Attr {
    const node = this.resolve(splitPath(m.path));
    if (node.isDir) throw new FsError('EISDIR', `is a directory: ${m.path}`);
    if (!node.isFile) throw new FsError('EINVAL', `not a regular file: ${m.path}`);
    node.replication = checkReplication(m.replication);
    node.ctimeMs = m.time;
    return this.attr(node);
  }

  private setXattr(m: SetXattrMutation): Attr {
    const node = this.resolve(splitPath(m.path));
    setXattr(node, m.name, Buffer.from(m.value, 'base64'), m.flags);
    node.ctimeMs = m.time;
    return this.attr(node);
  }

  private removeXattr(m: RemoveXattrMutation): Attr {
    const node = this.resolve(splitPath(m.path));
    removeXattr(node, m.name);
    node.ctimeMs = m.time;
    return this.attr(node);
  }

  private addChunk(m: AddChunkMutation): Attr {
    const node = this.resolve(splitPath(m.path));
    if (node.isDir) throw new FsError('EISDIR', `is a directory: ${m.path}`);
    if (!node.isFile) throw new FsError('EINVAL', `not a regular file: ${m.path}`);
    if (!Number.isSafeInteger(m.index) || m.index < 0) throw new FsError('EINVAL', `bad chunk index ${m.index}`);
    if (!Number.isSafeInteger(m.handle) || m.handle <= 0 || !Number.isSafeInteger(m.version) || m.version < 0) {
      throw new FsError('EINVAL', `bad chunk handle ${m.handle} or version ${m.version}`);
    }
    const chunks = node.chunks!;
    // An unwritten chunk may be placed again (under a new handle): nothing of it was acknowledged.
    const old = chunks[m.index];
    if (old && old.handle !== HOLE && old.version !== UNWRITTEN) throw new FsError('EEXIST', `${m.path} already has chunk ${m.index}`);
    while (chunks.length < m.index) chunks.push(HOLE_REF);
    chunks[m.index] = { handle: m.handle, version: m.version };
    if (m.handle > this.lastHandle) this.lastHandle = m.handle;
    return this.attr(node);
  }

  private setChunkVersion(m: SetChunkVersionMutation): Attr {
    const node = this.resolve(splitPath(m.path));
    const chunk = node.chunks?.[m.index];
    if (!chunk || chunk.handle !== m.handle) throw new FsError('ESTALE', `${m.path} has no chunk ${m.handle} at index ${m.index}`);
    if (!Number.isSafeInteger(m.version) || m.version <= chunk.version) {
      throw new FsError('EINVAL', `chunk ${m.handle}: version ${m.version} is not above ${chunk.version}`);
    }
    chunk.version = m.version;
    return this.attr(node);
  }

  // ------------------------------------------------------------------ helpers

  /** Resolves a whole path; ENOENT for a missing component, ENOTDIR for a non-directory in between. */
  resolve(parts: readonly string[]): Inode {
    if (parts.length === 0) return this.root;
    const parent = this.resolveDir(parts, parts.length - 1);
    const node = parent.children!.get(parts[parts.length - 1]);
    if (!node) throw new FsError('ENOENT', `no such file or directory: /${parts.join('/')}`);
    return node;
  }

  /** The directory formed by the first `depth` components. */
  private resolveDir(parts: readonly string[], depth: number): Inode {
    let node = this.root;
    for (let i = 0; i < depth; i++) {
      const next = node.children!.get(parts[i]);
      if (!next) throw new FsError('ENOENT', `no such file or directory: /${parts.slice(0, i + 1).join('/')}`);
      if (!next.isDir) throw new FsError('ENOTDIR', `not a directory: /${parts.slice(0, i + 1).join('/')}`);
      node = next;
    }
    return node;
  }

  /** Parent and name of a path that must not exist yet. */
  private freeSlot(path: string): { parent: Inode; name: string } {
    const parts = splitPath(path);
    if (parts.length === 0) throw new FsError('EEXIST', 'the root directory exists');
    const parent = this.resolveDir(parts, parts.length - 1);
    const name = parts[parts.length - 1];
    if (parent.children!.has(name)) throw new FsError('EEXIST', `file exists: ${path}`);
    return { parent, name };
  }

  /** Parent, name and inode of a path that must exist (not the root). */
  private existing(path: string): { parent: Inode; name: string; node: Inode } {
    const parts = splitPath(path);
    if (parts.length === 0) throw new FsError('EBUSY', 'the root directory cannot be changed this way');
    const parent = this.resolveDir(parts, parts.length - 1);
    const name = parts[parts.length - 1];
    const node = parent.children!.get(name);
    if (!node) throw new FsError('ENOENT', `no such file or directory: ${path}`);
    return { parent, name, node };
  }

  private attach(parent: Inode, name: string, node: Inode, time: number): void {
    parent.children!.set(name, node);
    touchDir(parent, time);
    if (node.ino > this.lastIno) this.lastIno = node.ino;
    this.inodeCount++;
  }

  private dropLink(node: Inode, time: number): void {
    node.nlink--;
    node.ctimeMs = time;
    if (node.nlink === 0) this.inodeCount--;
  }
}

export function newDir(ino: number, perm: number, uid: number, gid: number, time: number): Inode {
  return new Inode(ino, S_IFDIR | (perm & PERMISSION_BITS), uid, gid, time, time, time, 2, DIR_SIZE,
    new Map(), null, null);
}

function touchDir(dir: Inode, time: number): void {
  dir.mtimeMs = time;
  dir.ctimeMs = time;
}

/** `it` with `peeked` (taken from it to look ahead) put back in front, unless removed meanwhile. */
function* resumeWith(dir: Inode, peeked: [string, Inode], it: IterableIterator<[string, Inode]>): IterableIterator<[string, Inode]> {
  if (dir.children!.get(peeked[0]) === peeked[1]) yield peeked;
  yield* it;
}
