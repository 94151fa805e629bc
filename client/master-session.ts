import { performance } from 'perf_hooks';
import { randomBytes } from 'crypto';
import type { Call } from '../generated/chunkfs/master/Call';
import type { Reply__Output } from '../generated/chunkfs/master/Reply';
import { FsError, isErrnoName } from '../server/common/fs-error';
import type { OpName, OpRequest, OpResponseOut } from '../server/common/master-calls';
import { AnswerPoll } from './answer-poll';
import type { LeasedDirs } from './leased-dirs';
import { SessionLink } from './session-link';

interface Pending {
  op: OpName;
  /** the call as sent, kept to send again on a new connection (see IDEMPOTENT, RETRIABLE) */
  call: Call;
  resolve: (reply: never) => void;
  reject: (err: FsError) => void;
  /** performance.now() by which it fails (the wall clock may step meanwhile) */
  deadline: number;
  /** performance.now() when it was made: a lease in its reply counts from then */
  sentAt: number;
  /** The connection the call went out on (null while queued). */
  link: SessionLink | null;
  /** Why the connection it was last sent on broke, if it did (said when the deadline passes). */
  lastError: FsError | null;
}

/** How often calls are checked against their deadlines (ms). */
const SWEEP_MS = 100;
/** Pause before calls caught by a broken connection are sent again on a new one (ms). */
const RESEND_PAUSE_MS = 250;
/**
 * Calls that may be sent again when their connection breaks (a master restarting, a connection
 * cut), until their deadline: doing them twice is the same as doing them once. Reads; setting
 * absolute attributes (a size, a mode, times, a replication factor); and a chunk's allocation
 * (with its lease), release and confirmation (a repeated allocation answers the lease the first
 * one got while it lasts, or places or leases the chunk anew; a repeated confirmation is a no-op). Any other
 * mutation is RETRIABLE.
 */
const IDEMPOTENT: ReadonlySet<OpName> = new Set<OpName>([
  'getAttr', 'readDir', 'readLink', 'locate', 'statFs', 'chunkLocations', 'getXattr', 'listXattrs',
  'setAttr', 'setReplication', 'allocateChunk', 'releaseLease', 'chunkWritten',
]);

/**
 * Changes that doing twice is not the same as doing once (a second mkdir or exclusive create
 * would answer EEXIST, a second unlink ENOENT): sent with a retry key (proto/master.proto,
 * Call.retry_key), they may be sent again too, and the master answers a repeat of one it made
 * with EALREADY, which MasterClient turns into the change's result.
 */
const RETRIABLE: ReadonlySet<OpName> = new Set<OpName>(['mkdir', 'create', 'symlink', 'link', 'unlink', 'rmdir', 'rename', 'mknod', 'setXattr', 'removeXattr']);

/** Calls that change a directory's entries. */
const NAMESPACE_CHANGES: ReadonlySet<OpName> = new Set<OpName>(['mkdir', 'create', 'symlink', 'link', 'unlink', 'rmdir', 'rename', 'mknod']);
/**
 * Changes whose answer is polled for when made alone (answer-poll.ts): not a create, which a
 * file's data soon follows; polling then takes CPU from the chunkservers' work (tar of
 * /usr/include/linux 9.5 s against 9.1, small-file creates 102 a second against 108).
 */
const POLLED_CHANGES: ReadonlySet<OpName> = new Set<OpName>(['mkdir', 'symlink', 'link', 'unlink', 'rmdir', 'rename', 'mknod']);
/** Errors with which the master answers a change it did not make (anything else: it may have). */
const REFUSALS: ReadonlySet<string> = new Set([
  'ENOENT', 'EEXIST', 'ENOTEMPTY', 'ENOTDIR', 'EISDIR', 'EINVAL', 'ENAMETOOLONG', 'EACCES', 'EPERM', 'EXDEV', 'ELOOP', 'EMLINK',
]);

/**
 * The client end of a master session (proto/master.proto, Master.SessionPort): calls issued in
 * one event-loop turn go out as one CallBatch on a long-lived connection, and replies are
 * matched to calls by id. Each call has its own deadline (ETIMEDOUT). When the connection
 * breaks, the calls sent on it fail (EIO: a mutation's outcome is unknown); with `rideOutBreaks`
 * (a mount riding out a master restart), they are instead sent again on a new connection until
 * their deadline: the retriable changes with the retry key they first went with.
 */
export class MasterSession {
  private link: SessionLink | null = null;
  private readonly pending = new Map<number, Pending>();
  private queue: Call[] = [];
  private scheduled = false;
  private nextId = 1;
  /** Retry keys: a random prefix per session (unique among all clients) and a counter. */
  private readonly keyPrefix = randomBytes(9).toString('base64url');
  private nextKey = 0;
  private sweeper: NodeJS.Timeout | null = null;
  private closed = false;
  readonly answerPoll: AnswerPoll;

  constructor(
    /** Asks the master where it takes sessions (Master.SessionPort), before each connection. */
    private readonly sessionPort: () => Promise<number>,
    private readonly address: string,
    private readonly deadlineMs: number,
    /** Send calls caught by a broken connection again (a mount riding out a master restart). */
    private readonly rideOutBreaks: boolean,
    /** Where the directory leases replies carry go (null: this client asks for none). */
    private readonly leases: LeasedDirs | null = null,
    /**
     * Polls for the answer to a namespace change (POLLED_CHANGES) that waits alone, for at most
     * this many ms (answer-poll.ts; 0: sleeps). Only alone: with other calls in flight there is
     * other work for the CPU, which polling would take from it.
     */
    answerPollMs = 0,
  ) {
    this.answerPoll = new AnswerPoll(answerPollMs);
  }

  call<K extends OpName>(op: K, request: OpRequest<K>): Promise<OpResponseOut<K>> {
    return new Promise((resolve, reject) => {
      const id = this.nextId;
      this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
      const resolveReply = resolve as (reply: never) => void;
      const call: Call = { id, [op]: request };
      if (this.rideOutBreaks && RETRIABLE.has(op)) call.retryKey = `${this.keyPrefix}.${(this.nextKey++).toString(36)}`;
      this.pending.set(id, { op, call, resolve: resolveReply, reject, deadline: performance.now() + this.deadlineMs, sentAt: performance.now(), link: null, lastError: null });
      this.queue.push(call);
      this.schedule();
      if (!this.sweeper) {
        this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
        this.sweeper.unref();
      }
    });
  }

  close(): void {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    this.link?.end();
    this.link = null;
  }

  private schedule(delayMs = 0): void {
    if (this.scheduled) return;
    this.scheduled = true;
    if (delayMs > 0) setTimeout(() => this.flush(), delayMs).unref();
    else setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const calls = this.queue;
    this.queue = [];
    const live = calls.filter((c) => this.pending.has(c.id!)); // some may have timed out already
    if (live.length === 0) return;
    if (this.closed) {
      for (const c of live) this.fail(c.id!, new FsError('EIO', `session with master ${this.address} closed`));
      return;
    }
    const link = this.open();
    for (const c of live) this.pending.get(c.id!)!.link = link;
    link.send({ calls: live });
    const id = live[0].id!;
    if (live.length === 1 && this.pending.size === 1 && POLLED_CHANGES.has(this.pending.get(id)!.op)) {
      this.answerPoll.start(() => !this.pending.has(id));
    }
  }

  private open(): SessionLink {
    if (this.link) return this.link;
    const host = this.address.slice(0, this.address.lastIndexOf(':'));
    const link: SessionLink = new SessionLink(host, this.sessionPort(), `master ${this.address}`, {
      replies: (batch) => {
        batch.replies.forEach((r) => this.settle(r));
        if (batch.recalledDirs.length > 0) this.recalled(batch.recalledDirs.map(Number));
      },
      broken: (err) => this.broken(link, err),
    });
    this.link = link;
    return link;
  }

  private settle(reply: Reply__Output): void {
    const p = this.pending.get(reply.id);
    if (!p) return; // answered after its deadline
    this.pending.delete(reply.id);
    if (reply.dirLeases.length > 0) this.leases?.apply(reply.dirLeases, p.sentAt);
    if (reply.result === 'error' || !reply.result) {
      const errno = reply.error?.errno ?? '';
      if (NAMESPACE_CHANGES.has(p.op) && !REFUSALS.has(errno)) this.leases?.clear();
      p.reject(new FsError(isErrnoName(errno) ? errno : 'EIO', reply.error?.message ?? 'reply without a result'));
    } else if (reply.result !== p.op) {
      p.reject(new FsError('EIO', `master answered ${reply.result} to a ${p.op} call`));
    } else {
      p.resolve(reply[p.op] as never);
    }
  }

  /**
   * The master recalls leases: forgotten here (also those whose grant is still on its way), then
   * it hears so, else it would wait them out.
   */
  private recalled(dirs: number[]): void {
    if (!this.leases) return;
    this.leases.recall(dirs);
    this.call('endDirLeases', { dirs }).catch(() => undefined);
  }

  private broken(link: SessionLink, err: FsError): void {
    if (this.link === link) this.link = null;
    // Changes caught by the break may or may not be made, and the leases were this connection's.
    this.leases?.clear();
    let resend = false;
    for (const [id, p] of this.pending) {
      if (p.link !== link) continue;
      if (this.rideOutBreaks && (IDEMPOTENT.has(p.op) || p.call.retryKey) && p.deadline > performance.now() + RESEND_PAUSE_MS) {
        p.link = null;
        p.lastError = err;
        this.queue.push(p.call);
        resend = true;
      } else {
        this.pending.delete(id);
        p.reject(err);
      }
    }
    if (resend) this.schedule(RESEND_PAUSE_MS);
  }

  private fail(id: number, err: FsError): void {
    const p = this.pending.get(id);
    this.pending.delete(id);
    p?.reject(err);
  }

  private sweep(): void {
    const now = performance.now();
    for (const [id, p] of this.pending) {
      if (p.deadline > now) continue;
      this.pending.delete(id);
      if (NAMESPACE_CHANGES.has(p.op)) this.leases?.clear(); // its outcome is unknown
      p.reject(p.lastError ?? new FsError('ETIMEDOUT', `master ${this.address} did not answer ${p.op} within ${this.deadlineMs} ms`));
    }
    if (this.pending.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = null;
    }
  }
}
