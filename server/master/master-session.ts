import * as net from 'net';
import type { Call__Output } from '../../generated/chunkfs/master/Call';
import type { Reply } from '../../generated/chunkfs/master/Reply';
import { FsError, toFsError } from '../common/fs-error';
import { logger } from '../common/log';
import type { CallContext, NamespaceOps } from '../common/master-calls';
import { decodeCalls, encodeReplies, FrameReader } from '../common/session-frames';

const log = logger('session');

/** The master's session endpoint (Master.SessionPort): a TCP server of session connections. */
export interface SessionServer {
  port: number;
  /** Ends every session once its calls in flight are answered, and stops taking new ones. */
  stop(): Promise<void>;
}

/** How long stop() lets sessions finish before cutting them. */
const STOP_GRACE_MS = 2000;

/** Serves sessions on `host`, any free port. */
export async function serveSessions(host: string, ops: NamespaceOps): Promise<SessionServer> {
  const drains = new Set<() => void>();
  const sockets = new Set<net.Socket>();
  let sessions = 0;
  /** Per live session: asks it to give up a directory lease. */
  const recalls = new Map<number, (dir: number) => void>();
  const recall = (holder: number, dir: number): void => recalls.get(holder)?.(dir);
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    const session = ++sessions;
    sockets.add(socket);
    recalls.set(session, serveSession(socket, session, ops, drains, recall));
    socket.on('close', () => {
      sockets.delete(socket);
      recalls.delete(session);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    stop: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const drain of drains) drain();
      const cut = setTimeout(() => sockets.forEach((s) => s.destroy()), STOP_GRACE_MS);
      await closed;
      clearTimeout(cut);
    },
  };
}

/**
 * Serves one client's session connection: runs each call of every incoming batch, and sends
 * the replies that complete in one event-loop turn as one ReplyBatch (a group commit releases
 * many mutations at once, so their replies travel together). When the client ends its half of
 * the connection (or the master stops), the connection is ended once every call in flight has
 * been answered. Answers the function that recalls one of this session's directory leases: the
 * recall goes out after the replies queued before it.
 */
function serveSession(
  socket: net.Socket, session: number, ops: NamespaceOps, drains: Set<() => void>, recall: CallContext['recall'],
): (dir: number) => void {
  const frames = new FrameReader();
  let outgoing: Reply[] = [];
  let recalled: number[] = [];
  let scheduled = false;
  let inFlight = 0;
  let clientDone = false;
  let closed = false;

  const flush = (): void => {
    scheduled = false;
    if (closed) return;
    const replies = outgoing;
    const recalledDirs = recalled;
    outgoing = [];
    recalled = [];
    if (replies.length > 0 || recalledDirs.length > 0) socket.write(encodeReplies({ replies, recalledDirs }));
    if (clientDone && inFlight === 0) {
      closed = true;
      socket.end();
    }
  };
  const schedule = (): void => {
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  const answer = (reply: Reply): void => {
    inFlight--;
    outgoing.push(reply);
    schedule();
  };
  const drain = (): void => {
    clientDone = true;
    if (!scheduled) flush();
  };

  socket.on('data', (bytes: Buffer) => {
    let calls: Call__Output[];
    try {
      calls = frames.push(bytes).flatMap((message) => decodeCalls(message).calls);
    } catch (err) {
      log.warn(`session from ${socket.remoteAddress}:${socket.remotePort} cut: ${(err as Error).message}`);
      closed = true;
      socket.destroy();
      return;
    }
    for (const call of calls) {
      inFlight++;
      void run(ops, call, { session, recall, retryKey: call.retryKey || undefined }).then(answer);
    }
  });
  drains.add(drain);
  socket.on('end', drain);
  socket.on('close', () => {
    closed = true;
    drains.delete(drain);
  });
  socket.on('error', (err) => log.debug(`session connection error: ${err.message}`));
  return (dir) => {
    recalled.push(dir);
    schedule();
  };
}

/** One call -> its reply; never rejects (failures become an in-band CallError). */
async function run(ops: NamespaceOps, call: Call__Output, context: CallContext): Promise<Reply> {
  const op = call.op;
  const started = log.debugEnabled ? performance.now() : 0;
  try {
    if (!op) throw new FsError('EINVAL', 'call without an operation');
    // The op name selects both the handler and the request field (see master-calls.ts).
    const handler = ops[op] as (request: unknown, context: CallContext) => unknown;
    const result = await handler(call[op], context);
    if (started) log.debug(`${op} ${JSON.stringify(call[op])} ok ${(performance.now() - started).toFixed(2)}ms`);
    return { id: call.id, [op]: result, dirLeases: context.dirLeases } as Reply;
  } catch (err) {
    const e = toFsError(err);
    if (!(err instanceof FsError)) log.error(`${op ?? 'call'} failed unexpectedly: ${(err as Error)?.stack ?? String(err)}`);
    if (started) log.debug(`${op} ${JSON.stringify(op ? call[op] : null)} ${e.code} ${(performance.now() - started).toFixed(2)}ms`);
    return { id: call.id, error: { errno: e.code, message: e.message } };
  }
}

