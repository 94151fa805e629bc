import { posix } from 'path';
import type { CreateRequest__Output } from '../../generated/chunkfs/master/CreateRequest';
import type { CreateResponse } from '../../generated/chunkfs/master/CreateResponse';
import type { SetAttrRequest__Output } from '../../generated/chunkfs/master/SetAttrRequest';
import { encodeListing } from '../common/dir-listing';
import { checkFileSize } from '../common/file-size-limit';
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
export interface NamespaceOptions {
  /** How long a directory lease lasts (default DIR_LEASE_MS). */
  dirLeaseMs?: number;
  /** No master served this namespace before (tests): no leases of one to wait out at the start. */
  firstMaster?: boolean;
}

export function namespaceOps(state: MasterState, chunkservers: ChunkserverRegistry, chunks: ChunkManager, options: NamespaceOptions = {}): NamespaceOps {
  const { chunkSize } = chunks.options;
  const leasing = dirLeasing(state, new DirLeases(options.dirLeaseMs, !options.firstMaster));
  return {
    getAttr: (req) => ({ attr: state.ns.getattr(req.path) }),
    readDir: (req) => {
      const { children, cookie } = state.ns.readdirChildren(req.path, req.cookie, req.limit);
      return { entries: encodeListing(children, state.ns.defaultReplication), cookie };
    },
    readLink: (req) => ({ target: state.ns.readlink(req.path) }),
    locate: (req) => {
      const path = state.ns.locate(req.ino, req.path);
      if (path === null) throw new FsError('ESTALE', `no name has inode ${req.ino} any more`);
      return { path };
    },
    statFs: () => ({ ...chunkservers.capacity(), files: state.ns.inodeCount }),

    mkdir: (req, context) => leasing.change([req.path], context, ([dir]) => {
      const ino = state.nextIno();
      const change = adding(state, dir, req.path, {
        op: 'mkdir', path: req.path, mode: checkMode(req.mode), ...ownerOf(req.caller), ino, time: Date.now(), ...retried(context),
      });
      return { ...change, made: req.lease && state.ns.lookupOrNull(req.path)?.ino === ino ? ino : undefined };
    }),
    create: async (req, context) => ({ ...(await create(state, chunks, req, leasing, context)), parent: parentAttr(state, req.path) }),
    symlink: (req, context) => leasing.change([req.path], context, ([dir]) => adding(state, dir, req.path, {
      op: 'symlink', path: req.path, target: req.target, ...ownerOf(req.caller), ino: state.nextIno(), time: Date.now(), ...retried(context),
    })),
    mknod: (req, context) => leasing.change([req.path], context, ([dir]) => adding(state, dir, req.path, {
      op: 'mknod', path: req.path, mode: req.mode, rdev: req.rdev, ...ownerOf(req.caller), ino: state.nextIno(), time: Date.now(), ...retried(context),
    })),
    link: (req, context) => leasing.change([req.path], context, ([dir]) => ({
      done: commitForAttr(state, { op: 'link', existing: req.existing, path: req.path, time: Date.now(), ...retried(context) }).then((attr) => ({ attr })),
      changes: [{ dir, added: posix.basename(req.path) }],
    })),
    unlink: (req, context) => leasing.change([req.path], context, ([dir]) => removing(state, dir, req.path, { op: 'unlink', path: req.path, time: Date.now(), ...retried(context) })),
    rmdir: (req, context) => leasing.change([req.path], context, ([dir]) => removing(state, dir, req.path, { op: 'rmdir', path: req.path, time: Date.now(), ...retried(context) })),
    rename: (req, context) => leasing.change([req.from, req.to], context, ([fromDir, toDir]) => {
      // Checked in the turn the rename applies in (a commit applies at once): nothing can come
      // between. Not logged: replayed, the rename meets the same namespace, without `to`.
      const target = state.ns.lookupOrNull(req.to);
      if (req.noReplace && req.exchange) throw new FsError('EINVAL', 'RENAME_NOREPLACE and RENAME_EXCHANGE together');
      if (req.noReplace && target) throw new FsError('EEXIST', `${req.to} exists (RENAME_NOREPLACE)`);
      // Between two links of one file, a rename does nothing (POSIX): both names stay; an
      // exchange leaves both names in place too.
      const sameNames = req.exchange || (target !== null && target === state.ns.lookupOrNull(req.from));
      const exchange = req.exchange ? { exchange: true } : {};
      return {
        done: state.commit({ op: 'rename', from: req.from, to: req.to, time: Date.now(), ...exchange, ...retried(context) }).then(() => ({})),
        changes: sameNames ? [] : [{ dir: fromDir, removed: posix.basename(req.from) }, { dir: toDir, added: posix.basename(req.to) }],
      };
    }),
    endDirLeases: (req, context) => {
      leasing.end(req.dirs.map(Number), context);
      return {};
    },
    setAttr: async (req) => {
      checkSameFile(state, req.path, req.ino);
      return { attr: await commitForAttr(state, setattrMutation(req, chunkSize)) };
    },
    getXattr: (req) => ({ value: state.ns.getxattr(req.path, req.name) }),
    listXattrs: (req) => ({ names: state.ns.listxattrs(req.path) }),
    setXattr: (req, context) => repeated(state, context) ?? commitForAttr(state, {
      op: 'setXattr', path: req.path, name: req.name, value: req.value.toString('base64'), flags: req.flags, time: Date.now(), ...retried(context),
    }).then((attr) => ({ attr })),
    removeXattr: (req, context) => repeated(state, context) ?? commitForAttr(state, {
      op: 'removeXattr', path: req.path, name: req.name, time: Date.now(), ...retried(context),
    }).then((attr) => ({ attr })),
    setReplication: async (req) => ({
      attr: await commitForAttr(state, {
        op: 'setReplication', path: req.path, replication: checkReplication(req.replication), time: Date.now(),
      }),
    }),

    allocateChunk: async (req) => {
      checkSameFile(state, req.path, req.ino);
      return { ...(await chunks.allocate(req.path, req.index, req.avoid)), chunkSize };
    },
    chunkWritten: async (req) => {
      checkSameFile(state, req.path, req.ino);
      await chunks.written(req.path, req.index, req.handle, req.version, req.replicas);
      return {};
    },
    chunkLocations: async (req) => {
      checkSameFile(state, req.path, req.ino);
      return { chunks: await chunks.locations(req.path, req.firstIndex, req.count), chunkSize };
    },
    releaseLease: (req) => {
      checkSameFile(state, req.path, req.ino);
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
  if (!req.exclusive && !state.ns.retryKeys.has(context.retryKey)) {
    const existing = openExisting(state, req.path);
    if (existing) return existing; // nothing changes: no lease to wait for
  }
  return leasing.change([req.path], context, ([dir]) => {
    // Looked at again in the turn the create applies in: another session's create may have
    // come while this one waited for a lease.
    const existing = req.exclusive ? null : openExisting(state, req.path);
    if (existing) return { done: Promise.resolve(existing), changes: [] };
    const ino = state.nextIno();
    const creating = commitForAttr(state, {
      op: 'create', path: req.path, mode, ...ownerOf(req.caller), ino, time: Date.now(), replication, ...retried(context),
    });
    // A commit applies at once and waits only for the log: if the file is there now, its first
    // chunk's record joins the same log write. Without a chunk (no room, say) the writer
    // allocates later and hears why then.
    const first = req.allocateFirstChunk && state.ns.lookupOrNull(req.path)?.ino === ino
      ? chunks.allocate(req.path, 0).then((a) => ({ ...a, chunkSize: chunks.options.chunkSize }), () => undefined)
      : undefined;
    const done = (async (): Promise<CreateResponse> => ({ attr: await creating, created: true, firstChunk: await first }))();
    return { done, changes: [{ dir, added: posix.basename(req.path) }] };
  });
}

/** A change's outcome, and what it did to directories' entries (for their leases). */
interface Change<T> {
  /** resolves once the change is durable */
  done: Promise<T>;
  changes: DirChange[];
  /** a directory it made, to grant the calling session a lease on */
  made?: number;
}

/** Commits `m`, which makes a new inode at `path` in directory `dir`: it and the parent afterwards. */
function adding(state: MasterState, dir: number, path: string, m: Mutation): Change<{ attr: Attr; parent?: Attr }> {
  return {
    done: commitForAttr(state, m).then((attr) => ({ attr, parent: parentAttr(state, path) })),
    changes: [{ dir, added: posix.basename(path) }],
  };
}

/** Commits `m`, which removes the name `path` from directory `dir`: the parent afterwards. */
function removing(state: MasterState, dir: number, path: string, m: Mutation): Change<{ parent?: Attr }> {
  return {
    done: state.commit(m).then(() => ({ parent: parentAttr(state, path) })),
    changes: [{ dir, removed: posix.basename(path) }],
  };
}

/** Directory leases around namespace changes (dir-leases.ts). */
interface DirLeasing {
  /**
   * Makes a change to the entries of the directories holding `paths`: waits until no other
   * session holds a lease on any of them, then, in one turn, finds their inodes (0 for one
   * missing: the change fails), runs `commit` (a commit applies at once), and records the
   * leases the change renews, ends or grants, which go with the reply.
   */
  change<T>(paths: string[], context: CallContext, commit: (dirs: number[]) => Change<T>): Promise<T>;
  /** The session gave up its leases on `dirs` (after a recall). */
  end(dirs: number[], context: CallContext): void;
}

function dirLeasing(state: MasterState, leases: DirLeases): DirLeasing {
  return {
    change: async (paths, context, commit) => {
      for (;;) {
        // Looked at in the turn the change would be made in (again after any wait below).
        const again = repeated(state, context);
        if (again) return again;
        const dirs = paths.map((p) => state.ns.lookupOrNull(posix.dirname(p))?.ino ?? 0);
        const wait = leases.beforeChange(dirs, context.session, context.recall);
        if (wait) {
          await wait; // the paths may name other directories by then: look again
          continue;
        }
        const { done, changes, made } = commit(dirs);
        context.dirLeases = leases.changed(context.session, changes, made);
        return done;
      }
    },
    end: (dirs, context) => leases.end(dirs, context.session),
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
    checkFileSize(m.size, chunkSize);
    if (req.growOnly) m.growOnly = true;
    else m.chunkSize = chunkSize;
  }
  if (req.atimeMs !== undefined) m.atimeMs = checkTimeMs(req.atimeMs);
  if (req.mtimeMs !== undefined) m.mtimeMs = checkTimeMs(req.mtimeMs);
  return m;
}

/**
 * A call for an open file (`ino` given) meets the file it was opened on, or ESTALE (see
 * Namespace.expectIno). Checked in the turn the call starts in; changes that wait before their
 * commit check again (ChunkManager).
 */
function checkSameFile(state: MasterState, path: string, ino: number | undefined): void {
  if (ino !== undefined) state.ns.expectIno(path, ino);
}

/**
 * A repeat of a change made already (its retry key seen: its connection broke before the
 * answer): EALREADY once that change is durable, before the checks it would now fail (EEXIST,
 * ENOENT) and without making it again. Undefined for any other call.
 */
function repeated(state: MasterState, context: CallContext): Promise<never> | undefined {
  const key = context.retryKey;
  if (!state.ns.retryKeys.has(key)) return undefined;
  return state.durable().then(() => {
    throw new FsError('EALREADY', `the change with retry key ${key} was made already`);
  });
}

/** The call's retry key, for its record (absent, not undefined, when it has none). */
function retried(context: CallContext): { retryKey?: string } {
  return context.retryKey === undefined ? {} : { retryKey: context.retryKey };
}

/** Commits a mutation that yields the attributes of the inode it made or changed. */
async function commitForAttr(state: MasterState, m: Mutation): Promise<Attr> {
  const attr = await state.commit(m);
  if (!attr) throw new FsError('EIO', `${m.op} committed without attributes`);
  return attr;
}
