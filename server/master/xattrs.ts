import { FsError } from '../common/fs-error';
import type { Inode } from './inode';

/**
 * Extended attributes of an inode: names and values kept with it in the master's memory, logged
 * and checkpointed like every other attribute. The checks are Linux's (fs/xattr.c), so that a
 * client other than the kernel (which checks first) meets the same errors.
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
  const bytes = Buffer.byteLength(name);
  if (bytes === 0 || bytes > XATTR_NAME_MAX) throw new FsError('ERANGE', `attribute name of ${bytes} bytes (1 to ${XATTR_NAME_MAX})`);
  if (name.includes('\0')) throw new FsError('EINVAL', 'NUL byte in attribute name');
  const prefix = NAMESPACES.find((p) => name.startsWith(p));
  if (!prefix) throw new FsError('EOPNOTSUPP', `attribute ${name}: only the user., trusted. and security. namespaces are supported`);
  if (name.length === prefix.length) throw new FsError('EINVAL', `attribute name ${name} has nothing after its namespace`);
}

/** The value of attribute `name` of `node`; ENODATA when it has none by that name. */
export function getXattr(node: Inode, name: string): Buffer {
  checkXattrName(name);
  const value = node.xattrs?.get(name);
  if (!value) throw new FsError('ENODATA', `no attribute ${name}`);
  return value;
}

/** The names of `node`'s attributes, in the order they were first set. */
export function listXattrs(node: Inode): string[] {
  return node.xattrs ? [...node.xattrs.keys()] : [];
}

/** setxattr(2): checks everything, then sets (nothing changes on an error). */
export function setXattr(node: Inode, name: string, value: Buffer, flags: number): void {
  checkXattrName(name);
  if ((flags & ~(XATTR_CREATE | XATTR_REPLACE)) !== 0 || flags === (XATTR_CREATE | XATTR_REPLACE)) {
    throw new FsError('EINVAL', `bad setxattr flags ${flags}`);
  }
  if (value.length > XATTR_SIZE_MAX) throw new FsError('E2BIG', `attribute value of ${value.length} bytes (at most ${XATTR_SIZE_MAX})`);
  const old = node.xattrs?.get(name);
  if (old && flags & XATTR_CREATE) throw new FsError('EEXIST', `attribute ${name} exists (XATTR_CREATE)`);
  if (!old && flags & XATTR_REPLACE) throw new FsError('ENODATA', `no attribute ${name} to replace (XATTR_REPLACE)`);
  const listed = Buffer.byteLength(name) + 1;
  const { names, values } = xattrBytes(node);
  const total = names + values - (old ? listed + old.length : 0) + listed + value.length;
  if (total > XATTRS_PER_INODE_MAX) throw new FsError('ENOSPC', `attributes of ${total} bytes (at most ${XATTRS_PER_INODE_MAX} per inode)`);
  if (!old && names + listed > XATTR_LIST_MAX) throw new FsError('ENOSPC', `names of over ${XATTR_LIST_MAX} bytes`);
  node.xattrs ??= new Map();
  node.xattrs.set(name, value);
}

/** removexattr(2); ENODATA when there is no such attribute. */
export function removeXattr(node: Inode, name: string): void {
  checkXattrName(name);
  if (!node.xattrs?.delete(name)) throw new FsError('ENODATA', `no attribute ${name}`);
  if (node.xattrs.size === 0) node.xattrs = null;
}

/** Bytes of `node`'s attribute names as listxattr(2) lists them (NUL-ended), and of their values. */
function xattrBytes(node: Inode): { names: number; values: number } {
  let names = 0;
  let values = 0;
  for (const [name, value] of node.xattrs ?? []) {
    names += Buffer.byteLength(name) + 1;
    values += value.length;
  }
  return { names, values };
}
