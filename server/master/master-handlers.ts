import { posix } from 'path';
import type { CreateRequest__Output } from '../../generated/chunkfs/master/CreateRequest';
import type { CreateResponse } from '../../generated/chunkfs/master/CreateResponse';
import type { SetAttrRequest__Output } from '../../generated/chunkfs/master/SetAttrRequest';
import { encodeListing } from '../common/dir-listing';
import { FsError } from '../common/fs-error';
import type { CallContext, NamespaceOps } from '../common/master-calls';
import { DirLeases, type DirChange } from './dir-leases';
import type { Attr } from './inode';
import type { ChunkManager } from './chunk-manager';
import type { ChunkserverRegistry } from './chunkserver-registry';
import type { MasterState } from './master-state';
import type { Mutation, SetattrMutation } from './mutation';
import { checkMode, checkReplication, checkSize, checkTimeMs, ownerOf } from './request-checks';

/**
 * The namespace operations served on master sessions (master-session.ts). Each handler translates:
 * reads go to the namespace, mutations become one record for state.commit(), which
 * validates, applies and makes it durable.
 */
export function namespaceOps(state: MasterState, chunkservers: ChunkserverRegistry, chunks: ChunkManager): NamespaceOps {
  const { chunkSize } = chunks.options;
  const leasing = dirLeasing(state);
  const { cleared, tell } = leasing;
  return {
    getAttr: (req) => ({ attr: state.ns.getattr(req.path) }),
    readDir: (req) => {
      const { children, cookie } = state.ns.readdirChildren(req.path, req.cookie, req.limit);
      return { entries: encodeListing(children, state.ns.defaultReplication), cookie };
    },
    readLink: (req) => ({ target: state.ns.readlink(req.path) }),
    statFs: () => ({ ...chunkservers.capacity(), files: state.ns.inodeCount }),

    mkdir: async (req, context) => {
      const [dir] = await cleared([req.path], context);
      const attr = await commitForAttr(state, {
        op: 'mkdir', path: req.path, mode: checkMode(req.mode), ...ownerOf(req.caller),
        ino: state.nextIno(), time: Date.now(),
      });
      tell(context, [{ dir, added: posix.basename(req.path) }], req.lease ? attr.ino : undefined);
      return { attr, parent: parentAttr(state, req.path) };
    },
    create: async (req, context) => ({ ...(await create(state, chunks, req, leasing, context)), parent: parentAttr(state, req.path) }),
    symlink: async (req, context) => {
      const [dir] = await cleared([req.path], context);
      const attr = await commitForAttr(state, {
        op: 'symlink', path: req.path, target: req.target, ...ownerOf(req.caller),
        ino: state.nextIno(), time: Date.now(),
      });
      tell(context, [{ dir, added: posix.basename(req.path) }]);
      return { attr, parent: parentAttr(state, req.path) };
    },
    mknod: async (req, context) => {
      const [dir] = await cleared([req.path], context);
      const attr = await commitForAttr(state, {
        op: 'mknod', path: req.path, mode: req.mode, rdev: req.rdev, ...ownerOf(req.caller),
        ino: state.nextIno(), time: Date.now(),
      });
      tell(context, [{ dir, added: posix.basename(req.path) }]);
      return { attr, parent: parentAttr(state, req.path) };
    },
    link: async (req, context) => {
      const [dir] = await cleared([req.path], context);
      const attr = await commitForAttr(state, { op: 'link', existing: req.existing, path: req.path, time: Date.now() });
      tell(context, [{ dir, added: posix.basename(req.path) }]);
      return { attr };
    },
    unlink: async (req, context) => {
      const [dir] = await cleared([req.path], context);
      await state.commit({ op: 'unlink', path: req.path, time: Date.now() });
      tell(context, [{ dir, removed: posix.basename(req.path) }]);
      return { parent: parentAttr(state, req.path) };
    },
    rmdir: async (req, context) => {
      const [dir] = await cleared([req.path], context);
      await state.commit({ op: 'rmdir', path: req.path, time: Date.now() });
      tell(context, [{ dir, removed: posix.basename(req.path) }]);
      return { parent: parentAttr(state, req.path) };
    },
    rename: async (req, context) => {
      const [fromDir, toDir] = await cleared([req.from, req.to], context);
      // Checked in the turn the rename applies in (a commit applies at once): nothing can come
      // between. Not logged: replayed, the rename meets the same namespace, without `to`.
      if (req.noReplace && state.ns.lookupOrNull(req.to)) throw new FsError('EEXIST', `${req.to} exists (RENAME_NOREPLACE)`);
      await state.commit({ op: 'rename', from: req.from, to: req.to, time: Date.now() });
      tell(context, [{ dir: fromDir, removed: posix.basename(req.from) }, { dir: toDir, added: posix.basename(req.to) }]);
      return {};
    },
    setAttr: async (req) => ({ attr: await commitForAttr(state, setattrMutation(req, chunkSize)) }),
    setReplication: async (req) => ({
      attr: await commitForAttr(state, {
        op: 'setReplication', path: req.path, replication: checkReplication(req.replication), time: Date.now(),
      }),
    }),

    allocateChunk: async (req) => ({ ...(await chunks.allocate(req.path, req.index, req.avoid)), chunkSize }),
    chunkWritten: async (req) => {
      await chunks.written(req.path, req.index, req.handle, req.version, req.replicas);
      return {};
    },
    chunkLocations: async (req) => ({ chunks: await chunks.locations(req.path, req.firstIndex, req.count), chunkSize }),
    releaseLease: (req) => {
      chunks.release(req.path, req.index, req.version);
      return {};
    },
  };
}

/**
 * open(O_CREAT): an existing non-directory is opened without writing anything to the log;
 * with O_EXCL the namespace's EEXIST stands. A new file's factor is recorded even when it is
 * the cluster default, so that changing the default later leaves existing files as they are.
 */
async function create(
  state: MasterState, chunks: ChunkManager, req: CreateRequest__Output, leasing: DirLeasing, context: CallContext,
): Promise<CreateResponse> {
  const mode = checkMode(req.mode);
  const replication = req.replication === undefined ? state.ns.defaultReplication : checkReplication(req.replication);
  const [dir] = await leasing.cleared([req.path], context);
  if (!req.exclusive) {
    const existing = openExisting(state, req.path);
    if (existing) return existing;
  }
  // The look-up above and the commit run in one turn: nothing can come between (a commit applies
  // at once and waits only for the log).
  const ino = state.nextIno();
  const creating = commitForAttr(state, {
    op: 'create', path: req.path, mode, ...ownerOf(req.caller), ino, time: Date.now(), replication,
  });
  // If the file is there now, its first chunk's record joins the same log write. Without a chunk
  // (no room, say) the writer allocates later and hears why then.
  const first = req.allocateFirstChunk && state.ns.lookupOrNull(req.path)?.ino === ino
    ? chunks.allocate(req.path, 0).then((a) => ({ ...a, chunkSize: chunks.options.chunkSize }), () => undefined)
    : undefined;
  const attr = await creating;
  leasing.tell(context, [{ dir, added: posix.basename(req.path) }]);
  return { attr, created: true, firstChunk: await first };
}

/** Directory leases around namespace changes (dir-leases.ts). */
interface DirLeasing {
  /**
   * Waits until no other session holds a lease on the directories holding `paths`, and answers
   * their inodes (0 for one missing: the change fails), found in the turn the change applies in.
   */
  cleared(paths: string[], context: CallContext): Promise<number[]>;
  /** After a change: the leases it renews or ends go with the reply. */
  tell(context: CallContext, changes: DirChange[], made?: number): void;
}

function dirLeasing(state: MasterState): DirLeasing {
  const leases = new DirLeases();
  return {
    cleared: async (paths, context) => {
      for (;;) {
        const dirs = paths.map((p) => state.ns.lookupOrNull(posix.dirname(p))?.ino ?? 0);
        const wait = leases.beforeChange(dirs, context.session);
        if (!wait) return dirs;
        await wait; // the path may name another directory by now: look again
      }
    },
    tell: (context, changes, made) => {
      context.dirLeases = leases.changed(context.session, changes, made);
    },
  };
}

function openExisting(state: MasterState, path: string): CreateResponse | null {
  const node = state.ns.lookupOrNull(path);
  if (!node) return null;
  if (node.isDir) throw new FsError('EISDIR', `is a directory: ${path}`);
  return { attr: state.ns.attr(node), created: false };
}

/** The attributes of the directory holding `path` now, or undefined if it is gone (a race). */
function parentAttr(state: MasterState, path: string): Attr | undefined {
  try {
    return state.ns.getattr(posix.dirname(path));
  } catch {
    return undefined;
  }
}

/** Only the fields the request carries (proto3 optional) go into the record. */
function setattrMutation(req: SetAttrRequest__Output, chunkSize: number): SetattrMutation {
  const m: SetattrMutation = { op: 'setattr', path: req.path, time: Date.now() };
  if (req.mode !== undefined) m.mode = checkMode(req.mode);
  if (req.uid !== undefined) m.uid = req.uid;
  if (req.gid !== undefined) m.gid = req.gid;
  if (req.size !== undefined) {
    m.size = checkSize(req.size);
    if (req.growOnly) m.growOnly = true;
    else m.chunkSize = chunkSize;
  }
  if (req.atimeMs !== undefined) m.atimeMs = checkTimeMs(req.atimeMs);
  if (req.mtimeMs !== undefined) m.mtimeMs = checkTimeMs(req.mtimeMs);
  return m;
}

/** Commits a mutation that yields the attributes of the inode it made or changed. */
async function commitForAttr(state: MasterState, m: Mutation): Promise<Attr> {
  const attr = await state.commit(m);
  if (!attr) throw new FsError('EIO', `${m.op} committed without attributes`);
  return attr;
}
