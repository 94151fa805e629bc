import type * as grpc from '@grpc/grpc-js';
import type { Call__Output } from '../../generated/chunkfs/master/Call';
import type { CallBatch__Output } from '../../generated/chunkfs/master/CallBatch';
import type { Reply } from '../../generated/chunkfs/master/Reply';
import type { ReplyBatch } from '../../generated/chunkfs/master/ReplyBatch';
import { FsError, toFsError } from '../common/fs-error';
import { logger } from '../common/log';
import type { NamespaceOps } from '../common/master-calls';

const log = logger('session');

/**
 * Serves one client's Master.Session stream: runs each call of every incoming batch, and sends
 * the replies that complete in one event-loop turn as one ReplyBatch (a group commit releases
 * many mutations at once, so their replies travel together). When the client half-closes, the
 * stream is ended once every call in flight has been answered.
 */
export function sessionHandler(
  ops: NamespaceOps,
  open: SessionRegistry,
): grpc.handleBidiStreamingCall<CallBatch__Output, ReplyBatch> {
  return (stream) => {
    let outgoing: Reply[] = [];
    let scheduled = false;
    let inFlight = 0;
    let clientDone = false;
    let closed = false;

    const flush = (): void => {
      scheduled = false;
      if (closed) return;
      const replies = outgoing;
      outgoing = [];
      if (replies.length > 0) stream.write({ replies });
      if (clientDone && inFlight === 0) {
        closed = true;
        stream.end();
      }
    };
    const answer = (reply: Reply): void => {
      inFlight--;
      outgoing.push(reply);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    };

    stream.on('data', (batch: CallBatch__Output) => {
      for (const call of batch.calls) {
        inFlight++;
        run(ops, call).then(answer);
      }
    });
    const drain = (): void => {
      clientDone = true;
      if (!scheduled) flush();
    };
    open.add(drain);
    stream.on('end', drain);
    stream.on('close', () => open.delete(drain));
    stream.on('error', (err) => log.debug(`session stream error: ${err.message}`));
    stream.on('cancelled', () => (closed = true));
  };
}

/** The open sessions: at shut-down each is ended as soon as its calls in flight are answered. */
export class SessionRegistry extends Set<() => void> {
  drainAll(): void {
    for (const drain of this) drain();
  }
}

/** One call -> its reply; never rejects (failures become an in-band CallError). */
async function run(ops: NamespaceOps, call: Call__Output): Promise<Reply> {
  const op = call.op;
  const started = log.debugEnabled ? performance.now() : 0;
  try {
    if (!op) throw new FsError('EINVAL', 'call without an operation');
    // The op name selects both the handler and the request field (see master-calls.ts).
    const handler = ops[op] as (request: unknown) => unknown;
    const result = await handler(call[op]);
    if (started) log.debug(`${op} ${JSON.stringify(call[op])} ok ${(performance.now() - started).toFixed(2)}ms`);
    return { id: call.id, [op]: result } as Reply;
  } catch (err) {
    const e = toFsError(err);
    if (!(err instanceof FsError)) log.error(`${op ?? 'call'} failed unexpectedly: ${(err as Error)?.stack ?? String(err)}`);
    if (started) log.debug(`${op} ${JSON.stringify(op ? call[op] : null)} ${e.code} ${(performance.now() - started).toFixed(2)}ms`);
    return { id: call.id, error: { errno: e.code, message: e.message } };
  }
}

