import { performance } from 'perf_hooks';
import * as grpc from '@grpc/grpc-js';
import type { Attr__Output as WireAttr } from '../generated/chunkfs/Attr';
import type { MasterClient as MasterStub } from '../generated/chunkfs/master/Master';
import type { MasterAdminClient as MasterAdminStub } from '../generated/chunkfs/master/MasterAdmin';
import type { ChunkLocation__Output as ChunkLocation } from '../generated/chunkfs/master/ChunkLocation';
import type { SessionPortResponse__Output } from '../generated/chunkfs/master/SessionPortResponse';
import type { AllocateChunkResponse__Output } from '../generated/chunkfs/master/AllocateChunkResponse';
import type { FsckResponse__Output } from '../generated/chunkfs/master/FsckResponse';
import type { ReportResponse__Output } from '../generated/chunkfs/master/ReportResponse';
import type { DecommissionResponse__Output } from '../generated/chunkfs/master/DecommissionResponse';
import type { ChunkserverStatus__Output } from '../generated/chunkfs/master/ChunkserverStatus';
import { decodeListing, ListingPage } from '../server/common/dir-listing';
import { FsError } from '../server/common/fs-error';
import { MESSAGE_LIMITS, PROMPT_RECONNECT, protos } from '../server/common/proto';
import { LeasedDirs } from './leased-dirs';
import { MasterSession } from './master-session';
import { unaryCall } from './unary-call';
import type { Attr } from '../server/master/inode';
import type { AttrChanges } from '../server/master/mutation';
import { checkAttrChanges, checkChunkIndex, checkMode, checkOwnerId, checkReplication } from '../server/master/request-checks';
import type { CheckpointResult, MasterStatus } from '../server/master/master-state';
import type { DirEntry, ReaddirPage } from '../server/master/namespace';

/** How a rename treats an existing target: replace it, refuse (EEXIST), or swap the two names. */
export type RenameMode = 'replace' | 'noReplace' | 'exchange';

export interface MasterClientOptions {
  /** Deadline of every call, in milliseconds (default 10 s). */
  deadlineMs?: number;
  /**
   * Calls caught by a broken session (a master restarting) are sent again until their deadline
   * instead of failing at once, changes with a retry key so that none is made twice
   * (master-session.ts): what a mount wants; a CLI command fails fast.
   */
  rideOutBreaks?: boolean;
  /**
   * Take a lease on each directory this client makes (proto/master.proto, DirLease), so that
   * lookups of names absent from it need no round trip while it lasts (see leasedDirs): what a
   * mount wants. Another client's change to such a directory recalls the lease and waits for it
   * to be given up (a round trip; at most a second when the holder does not answer).
   */
  dirLeases?: boolean;
  /**
   * Poll for the answer to a namespace change made alone for at most this many ms instead of
   * sleeping (answer-poll.ts; default 0): what a mount wants, trading CPU for latency.
   */
  answerPollMs?: number;
}

/** Owner given to inodes a call creates. */
export interface Caller {
  uid: number;
  gid: number;
}


export interface FsStats {
  capacityBytes: number;
  freeBytes: number;
  /** inodes in use */
  files: number;
}

/** Replies of the calls that answer the attributes of one inode. */
interface AttrReply {
  attr: WireAttr | null;
}

/** `chunkfs admin report`: what the master knows of its chunkservers and chunks. */
export type ClusterReport = ReportResponse__Output;
/** One chunkserver in a report. */
export type ChunkserverStatus = ChunkserverStatus__Output;
/** `chunkfs admin fsck`: per-file chunk health. */
export type FsckReport = FsckResponse__Output;

/** Entries per readdir page a whole listing (listing(), readdirAll) asks for. */
const READDIR_PAGE = 1000;

/**
 * Promise API over the Master and MasterAdmin services of one master (HOST:PORT). Namespace
 * calls travel on one session connection (see master-session.ts), admin calls are unary gRPC.
 * Every call carries a deadline, and every failure is an FsError.
 */
export class MasterClient {
  private readonly master: MasterStub;
  private readonly admin: MasterAdminStub;
  private readonly deadlineMs: number;
  private readonly session: MasterSession;
  /** The directories this client holds leases on (null without options.dirLeases). */
  readonly leasedDirs: LeasedDirs | null;

  constructor(
    readonly address: string,
    options: MasterClientOptions = {},
  ) {
    this.deadlineMs = options.deadlineMs ?? 10_000;
    const channelOptions: grpc.ChannelOptions = {
      ...MESSAGE_LIMITS,
      ...PROMPT_RECONNECT, // a mount riding out a master restart reaches it soon after
      // Own connection per client: grpc-js otherwise shares one TCP connection among all
      // channels with equal options, which would make a pool of clients pointless.
      'grpc.use_local_subchannel_pool': 1,
    };
    const credentials = grpc.credentials.createInsecure();
    this.master = new protos.chunkfs.master.Master(address, credentials, channelOptions);
    this.admin = new protos.chunkfs.master.MasterAdmin(address, credentials, {
      ...channelOptions,
      channelOverride: this.master.getChannel(),
    });
    const sessionPort = async (): Promise<number> => (await this.call<SessionPortResponse__Output>((o, cb) => this.master.sessionPort({}, o, cb))).port;
    this.leasedDirs = options.dirLeases ? new LeasedDirs(this.deadlineMs) : null;
    this.session = new MasterSession(sessionPort, address, this.deadlineMs, options.rideOutBreaks ?? false, this.leasedDirs, options.answerPollMs);
  }

  /** Event-loop turns spent polling for answers (answer-poll.ts), for tests and diagnostics. */
  get answerPollTurns(): number {
    return this.session.answerPoll.turns;
  }

  // ------------------------------------------------------------------ reads

  async getattr(path: string): Promise<Attr> {
    return attrOf(await this.session.call('getAttr', { path }));
  }

  /** One page; pass the returned cookie back for the next ('' = complete). */
  async readdir(path: string, cookie = '', limit = READDIR_PAGE): Promise<ReaddirPage> {
    const { page, cookie: next } = await this.readdirPage(path, cookie, limit);
    return { entries: page.entries(), cookie: next };
  }

  /** One page as it came, each entry's attributes built when asked for. */
  async readdirPage(path: string, cookie = '', limit = READDIR_PAGE): Promise<{ page: ListingPage; cookie: string }> {
    const reply = await this.session.call('readDir', { path, cookie, limit });
    return { page: decodeListing(reply.entries), cookie: reply.cookie };
  }

  /** The whole listing as one page, asked for `limit` entries at a time. */
  async listing(path: string, limit = READDIR_PAGE): Promise<ListingPage> {
    const pages: ListingPage[] = [];
    let cookie = '';
    do {
      const next = await this.readdirPage(path, cookie, limit);
      pages.push(next.page);
      cookie = next.cookie;
    } while (cookie !== '');
    return ListingPage.join(pages);
  }

  async readdirAll(path: string): Promise<DirEntry[]> {
    return (await this.listing(path)).entries();
  }

  /**
   * A name inode `ino` has now: `known` when it still names it, else found by the master
   * (another client renamed the file); ESTALE when it has none any more.
   */
  async locate(ino: number, known: string): Promise<string> {
    return (await this.session.call('locate', { ino, path: known })).path;
  }

  async readlink(path: string): Promise<string> {
    return (await this.session.call('readLink', { path })).target;
  }

  statfs(): Promise<FsStats> {
    return this.session.call('statFs', {});
  }

  // ------------------------------------------------------------------ mutations

  async mkdir(path: string, mode: number, caller?: Caller): Promise<Made> {
    const lease = this.leasedDirs !== null;
    return this.once(async () => madeOf(await this.session.call('mkdir', { path, mode: checkMode(mode), caller: checkCaller(caller), lease })), () => this.madeAt(path));
  }

  /**
   * open(O_CREAT [| O_EXCL]); `created` is false when an existing file was opened. A new file
   * gets `replication` replicas per chunk (default: the cluster's); with `allocateFirstChunk`
   * (the caller is about to write) it comes with `firstChunk`, as allocateChunk(path, 0) answers.
   */
  async create(
    path: string, mode: number, exclusive: boolean, opts: CreateOptions = {},
  ): Promise<Made & { created: boolean; firstChunk?: ChunkAllocation }> {
    return this.once(async () => {
      const asked = readClocks();
      const reply = await this.session.call('create', {
        path, mode: checkMode(mode), exclusive, caller: checkCaller(opts.caller),
        replication: opts.replication === undefined ? undefined : checkReplication(opts.replication),
        allocateFirstChunk: opts.allocateFirstChunk ?? false,
      });
      const first = reply.created && reply.firstChunk ? allocationOf(reply.firstChunk, asked) : undefined;
      return { ...madeOf(reply), created: reply.created, ...(first && { firstChunk: first }) };
    }, async () => ({ ...(await this.madeAt(path)), created: true })); // its first chunk is allocated at the first write
  }

  /** A regular file's replication factor; the master adds or trims replicas in the background. */
  async setReplication(path: string, replication: number): Promise<Attr> {
    return attrOf(await this.session.call('setReplication', { path, replication: checkReplication(replication) }));
  }

  /** symlink(2) argument order: `path` becomes a link pointing at `target`. */
  async symlink(target: string, path: string, caller?: Caller): Promise<Made> {
    return this.once(async () => madeOf(await this.session.call('symlink', { path, target, caller: checkCaller(caller) })), () => this.madeAt(path));
  }

  /** A FIFO, socket or device node (`mode`: type bits | permission bits; `rdev`: a device's number). */
  async mknod(path: string, mode: number, rdev: number, caller?: Caller): Promise<Made> {
    return this.once(async () => madeOf(await this.session.call('mknod', { path, mode, rdev, caller: checkCaller(caller) })), () => this.madeAt(path));
  }

  async link(existing: string, path: string): Promise<Attr> {
    return this.once(async () => attrOf(await this.session.call('link', { existing, path })), () => this.getattr(path));
  }

  /** Resolves to the parent directory's attributes afterwards, when the master had them. */
  async unlink(path: string): Promise<Attr | null> {
    return this.once(async () => (await this.session.call('unlink', { path })).parent ?? null, async () => null);
  }

  /** Resolves to the parent directory's attributes afterwards, when the master had them. */
  async rmdir(path: string): Promise<Attr | null> {
    return this.once(async () => (await this.session.call('rmdir', { path })).parent ?? null, async () => null);
  }

  /** `mode`: a plain rename replaces `to`; renameat2's RENAME_NOREPLACE and RENAME_EXCHANGE. */
  async rename(from: string, to: string, mode: RenameMode = 'replace'): Promise<void> {
    const flags = { noReplace: mode === 'noReplace', exchange: mode === 'exchange' };
    await this.once(async () => void (await this.session.call('rename', { from, to, ...flags })), async () => undefined);
  }

  /** `ino`: an open file's, which `path` must still name (ESTALE otherwise; see master.proto). */
  async setattr(path: string, changes: AttrChanges, ino?: number): Promise<Attr> {
    return attrOf(await this.session.call('setAttr', { path, ...checkAttrChanges(changes), ino }));
  }

  // ------------------------------------------------------------------ extended attributes

  /** `flags`: XATTR_CREATE, XATTR_REPLACE or 0 (server/master/xattrs.ts). */
  async setxattr(path: string, name: string, value: Buffer, flags: number): Promise<Attr> {
    return this.once(async () => attrOf(await this.session.call('setXattr', { path, name, value, flags })), () => this.getattr(path));
  }

  async getxattr(path: string, name: string): Promise<Buffer> {
    return (await this.session.call('getXattr', { path, name })).value;
  }

  async listxattrs(path: string): Promise<string[]> {
    return (await this.session.call('listXattrs', { path })).names;
  }

  async removexattr(path: string, name: string): Promise<Attr> {
    return this.once(async () => attrOf(await this.session.call('removeXattr', { path, name })), () => this.getattr(path));
  }

  // ------------------------------------------------------------------ chunks

  /**
   * The chunk at `index` of a file, placed if missing, with a write lease: replicas primary first,
   * at the version to write with. A chunk not written yet comes with createReplicas: its first
   * write creates the replicas, and chunkWritten must confirm it before the write counts as done.
   * `avoid`: chunkservers that failed a write to the chunk; an unwritten chunk placed on any of
   * them is placed again, a written one leased anew.
   */
  async allocateChunk(path: string, index: number, avoid: string[] = [], ino?: number): Promise<ChunkAllocation> {
    checkChunkIndex(index);
    const asked = readClocks();
    return allocationOf(await this.session.call('allocateChunk', { path, index, avoid, ino }), asked);
  }

  /** The first write of an unwritten chunk is durable on `replicas` (see allocateChunk). */
  async chunkWritten(path: string, chunk: { index: number; handle: number; version: number; replicas: string[] }, ino?: number): Promise<void> {
    checkChunkIndex(chunk.index);
    await this.session.call('chunkWritten', { path, ...chunk, ino });
  }

  /** Up to `count` chunks of a file from `firstIndex` on (holes have handle 0). */
  async chunkLocations(path: string, firstIndex: number, count: number, ino?: number): Promise<{ chunks: ChunkLocation[]; chunkSize: number }> {
    checkChunkIndex(firstIndex);
    return this.session.call('chunkLocations', { path, firstIndex, count, ino });
  }

  /** Ends a write lease taken with allocateChunk (at that lease's chunk version). */
  async releaseLease(path: string, index: number, version: number, ino?: number): Promise<void> {
    checkChunkIndex(index);
    await this.session.call('releaseLease', { path, index, version, ino });
  }

  // ------------------------------------------------------------------ admin

  checkpoint(): Promise<CheckpointResult> {
    return this.call<CheckpointResult>((o, cb) => this.admin.checkpoint({}, o, cb));
  }

  /** With `collectGarbage`, heapUsedBytes counts live data only (master run with --expose-gc). */
  status(collectGarbage = false): Promise<MasterStatus & { heapUsedBytes: number }> {
    return this.call((o, cb) => this.admin.status({ collectGarbage }, o, cb));
  }

  /** Chunkservers and chunk health. */
  report(): Promise<ClusterReport> {
    return this.call((o, cb) => this.admin.report({}, o, cb));
  }

  /** Health of every file at or below `path`. */
  fsck(path: string): Promise<FsckReport> {
    return this.call((o, cb) => this.admin.fsck({ path }, o, cb));
  }

  /** Starts draining the chunkserver with that id or HOST:PORT; answers with its status. */
  async decommission(chunkserver: string): Promise<ChunkserverStatus> {
    const reply = await this.call<DecommissionResponse__Output>((o, cb) => this.admin.decommission({ chunkserver }, o, cb));
    if (!reply.chunkserver) throw new FsError('EIO', 'master reply without the chunkserver');
    return reply.chunkserver;
  }

  close(): void {
    this.session.close();
    this.master.close();
  }

  /**
   * A change sent with a retry key (master-session.ts, RETRIABLE): when the master answers a
   * repeat of it (its connection broke) with EALREADY, the change was made, and `made` gives
   * its result from what the master has now.
   */
  private async once<T>(change: () => Promise<T>, made: () => Promise<T>): Promise<T> {
    try {
      return await change();
    } catch (err) {
      if (err instanceof FsError && err.code === 'EALREADY') return made();
      throw err;
    }
  }

  /** What a change that made `path` answers, from its attributes now. */
  private async madeAt(path: string): Promise<Made> {
    return { attr: await this.getattr(path), parent: null };
  }

  /** Starts one unary call with this client's deadline and settles with its reply or FsError. */
  private call<Reply>(start: (options: grpc.CallOptions, done: grpc.requestCallback<Reply>) => void): Promise<Reply> {
    return unaryCall(`master ${this.address}`, this.deadlineMs, start);
  }
}

/** Numbers are checked before encoding: protobuf would turn -1 into 0 and 2.5 into 2 unseen. */
function checkCaller(caller: Caller | undefined): Caller | undefined {
  if (caller) {
    checkOwnerId(caller.uid);
    checkOwnerId(caller.gid);
  }
  return caller;
}

/** Options of MasterClient.create. */
export interface CreateOptions {
  caller?: Caller;
  replication?: number;
  allocateFirstChunk?: boolean;
}

/** A chunk as allocateChunk answers it (see AllocateChunkResponse). */
export interface ChunkAllocation {
  chunk: ChunkLocation;
  chunkSize: number;
  /** When the write lease ends here (null: none came). */
  leaseEnds: LeaseEnd | null;
  createReplicas: boolean;
}

/** A moment by both of this process's clocks. */
interface ClockReadings {
  /** performance.now(): no step of the wall clock moves it */
  monotonicMs: number;
  /** Date.now(): it also counts time the machine was suspended */
  wallMs: number;
}

/**
 * When a lease ends, by both clocks: the master's span counted from when this process asked
 * (so no later than there).
 */
export type LeaseEnd = ClockReadings;

/** Whether a lease ending at `end` runs for more than `marginMs` yet by both clocks. */
export function leaseRuns(end: LeaseEnd, marginMs: number): boolean {
  return end.monotonicMs - performance.now() > marginMs && end.wallMs - Date.now() > marginMs;
}

/** Now, by both clocks: when a call goes out, from which the lease its reply may bring counts. */
function readClocks(): ClockReadings {
  return { monotonicMs: performance.now(), wallMs: Date.now() };
}

/** `reply`, to a call this process sent at `asked`. */
function allocationOf(reply: AllocateChunkResponse__Output, asked: ClockReadings): ChunkAllocation {
  if (!reply.chunk) throw new FsError('EIO', 'master reply without a chunk');
  const leaseEnds = reply.leaseMs > 0 ? { monotonicMs: asked.monotonicMs + reply.leaseMs, wallMs: asked.wallMs + reply.leaseMs } : null;
  return { chunk: reply.chunk, chunkSize: reply.chunkSize, leaseEnds, createReplicas: reply.createReplicas };
}

/** A new name's attributes, and its directory's once it was added (null if the master had none). */
export interface Made {
  attr: Attr;
  parent: Attr | null;
}

function madeOf(reply: AttrReply & { parent?: Attr | null }): Made {
  return { attr: attrOf(reply), parent: reply.parent ?? null };
}

/** The plain attributes of a reply that must carry them. */
function attrOf(reply: AttrReply): Attr {
  if (!reply.attr) throw new FsError('EIO', 'master reply without attributes');
  return reply.attr;
}
