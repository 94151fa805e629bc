import { FsError } from '../common/fs-error';
import { isRawName, rawLength } from '../common/raw-names';
import type { Inode } from './inode';

/**
 * Extended attributes of an inode: names and values kept with it in the master's memory, logged
 * and checkpointed like every other attribute. The checks are Linux's (fs/xattr.c), so that a
 * client other than the kernel (which checks first) meets the same errors. Privileges (who may
 * touch trusted.* or security.*) are the kernel's to check: the master does not know the caller.
 *
 * An inode keeps them as one flat array (Inode.xattrs), name then value, each value a string of
 * its bytes (latin1, one byte per character): a Map with a Buffer per value cost ~280 heap bytes
 * for one small attribute, and a Buffer cut from Node's shared pool kept its whole 8 KiB slab
 * alive.
 */

/** Linux's limits (linux/limits.h): a longer name is ERANGE, a bigger value E2BIG. */
export const XATTR_NAME_MAX = 255;
export const XATTR_SIZE_MAX = 65536;
/**
 * Bytes of one inode's names and values together, at most (ENOSPC past it, as ext4 answers
 * when its block is full): every inode's attributes share the master's memory.
 */
export const XATTRS_PER_INODE_MAX = 256 * 1024;
/** The list of one inode's names (each NUL-ended), at most: the kernel's XATTR_LIST_MAX. */
export const XATTR_LIST_MAX = 65536;
/** setxattr(2) flags. */
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;
/**
 * Namespaces stored. system.* holds POSIX ACLs, which the kernel would have to enforce: without
 * ACL support in the mount it refuses them itself, and so does the master.
 */
const NAMESPACES = ['user.', 'trusted.', 'security.'];

/** Throws unless `name` is a name Linux would pass to a file system. */
export function checkXattrName(name: string): void {
  const bytes = rawLength(name);
  if (bytes === 0 || bytes > XATTR_NAME_MAX) throw new FsError('ERANGE', `attribute name of ${bytes} bytes (1 to ${XATTR_NAME_MAX})`);
  if (name.includes('\0')) throw new FsError('EINVAL', 'NUL byte in attribute name');
  if (!isRawName(name)) throw new FsError('EINVAL', `attribute name ${JSON.stringify(name)} stands for the bytes of another (common/raw-names.ts)`);
  const prefix = NAMESPACES.find((p) => name.startsWith(p));
  if (!prefix) throw new FsError('EOPNOTSUPP', `attribute ${name}: only the user., trusted. and security. namespaces are supported`);
  if (name.length === prefix.length) throw new FsError('EINVAL', `attribute name ${name} has nothing after its namespace`);
}

/** The value of attribute `name` of `node`; ENODATA when it has none by that name. */
export function getXattr(node: Inode, name: string): Buffer {
  checkXattrName(name);
  const at = indexOf(node, name);
  if (at < 0) throw new FsError('ENODATA', `no attribute ${name}`);
  return Buffer.from(node.xattrs![at + 1], 'latin1');
}

/** The names of `node`'s attributes, in the order they were first set. */
export function listXattrs(node: Inode): string[] {
  return (node.xattrs ?? []).filter((_, i) => i % 2 === 0); // names only: no value copied
}

/** `node`'s attributes as [name, value] pairs, in the order they were first set. */
export function xattrEntries(node: Inode): Array<[string, Buffer]> {
  const list = node.xattrs ?? [];
  const out: Array<[string, Buffer]> = [];
  for (let i = 0; i < list.length; i += 2) out.push([list[i], Buffer.from(list[i + 1], 'latin1')]);
  return out;
}

/** Gives `node` the attributes `entries` (a checkpoint's), replacing any it had. */
export function loadXattrs(node: Inode, entries: ReadonlyArray<readonly [string, Buffer]>): void {
  node.xattrs = entries.length > 0 ? entries.flatMap(([name, value]) => [interned(name), value.toString('latin1')]) : null;
}

/** setxattr(2): checks everything, then sets (nothing changes on an error). */
export function setXattr(node: Inode, name: string, value: Buffer, flags: number): void {
  checkXattrName(name);
  // Linux keeps user.* to regular files and directories (their permission bits decide who may).
  if (name.startsWith('user.') && !node.isFile && !node.isDir) throw new FsError('EPERM', `${name}: user. attributes only on files and directories`);
  if ((flags & ~(XATTR_CREATE | XATTR_REPLACE)) !== 0 || flags === (XATTR_CREATE | XATTR_REPLACE)) {
    throw new FsError('EINVAL', `bad setxattr flags ${flags}`);
  }
  if (value.length > XATTR_SIZE_MAX) throw new FsError('E2BIG', `attribute value of ${value.length} bytes (at most ${XATTR_SIZE_MAX})`);
  const at = indexOf(node, name);
  const old = at < 0 ? undefined : node.xattrs![at + 1];
  if (old !== undefined && flags & XATTR_CREATE) throw new FsError('EEXIST', `attribute ${name} exists (XATTR_CREATE)`);
  if (old === undefined && flags & XATTR_REPLACE) throw new FsError('ENODATA', `no attribute ${name} to replace (XATTR_REPLACE)`);
  const listed = rawLength(name) + 1;
  const { names, values } = xattrBytes(node);
  const total = names + values - (old !== undefined ? listed + old.length : 0) + listed + value.length;
  if (total > XATTRS_PER_INODE_MAX) throw new FsError('ENOSPC', `attributes of ${total} bytes (at most ${XATTRS_PER_INODE_MAX} per inode)`);
  if (old === undefined && names + listed > XATTR_LIST_MAX) throw new FsError('ENOSPC', `names of over ${XATTR_LIST_MAX} bytes`);
  const bytes = value.toString('latin1');
  if (at >= 0) node.xattrs![at + 1] = bytes;
  else if (node.xattrs) node.xattrs.push(interned(name), bytes);
  else node.xattrs = [interned(name), bytes]; // a literal is sized exactly; a push onto [] reserves 17 slots
}

/**
 * Names in use, one string each: most inodes of a tree copied from elsewhere carry the same few
 * names (security.selinux, user.*), and each logged change brings its own copy of the name.
 */
const NAMES = new Map<string, string>();
const MAX_INTERNED = 10_000;

function interned(name: string): string {
  const known = NAMES.get(name);
  if (known !== undefined) return known;
  if (NAMES.size < MAX_INTERNED) NAMES.set(name, name);
  return name;
}

/** removexattr(2); ENODATA when there is no such attribute. */
export function removeXattr(node: Inode, name: string): void {
  checkXattrName(name);
  const at = indexOf(node, name);
  if (at < 0) throw new FsError('ENODATA', `no attribute ${name}`);
  node.xattrs!.splice(at, 2);
  if (node.xattrs!.length === 0) node.xattrs = null;
}

/** Where `name` is in `node`'s list, or -1. */
function indexOf(node: Inode, name: string): number {
  const list = node.xattrs;
  if (list) for (let i = 0; i < list.length; i += 2) if (list[i] === name) return i;
  return -1;
}

/** Bytes of `node`'s attribute names as listxattr(2) lists them (NUL-ended), and of their values. */
function xattrBytes(node: Inode): { names: number; values: number } {
  let names = 0;
  let values = 0;
  const list = node.xattrs ?? [];
  for (let i = 0; i < list.length; i += 2) {
    names += rawLength(list[i]) + 1;
    values += list[i + 1].length;
  }
  return { names, values };
}
