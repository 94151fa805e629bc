import type { Call, Call__Output } from '../../generated/chunkfs/master/Call';
import type { DirLease } from '../../generated/chunkfs/master/DirLease';
import type { Reply, Reply__Output } from '../../generated/chunkfs/master/Reply';

/**
 * The namespace calls of a master session (session-frames.ts), typed per operation: the `op` oneof of a
 * Call and the `result` oneof of a Reply use the same field names, so one name selects both
 * the request and the response type.
 */
export type OpName = NonNullable<Call['op']>;
/** What the client sends. */
export type OpRequest<K extends OpName> = NonNullable<Call[K]>;
/** What the server's handler receives (defaults filled in). */
export type OpRequestIn<K extends OpName> = NonNullable<Call__Output[K]>;
/** What the server's handler returns. */
export type OpResponse<K extends OpName> = NonNullable<Reply[K]>;
/** What the client receives. */
export type OpResponseOut<K extends OpName> = NonNullable<Reply__Output[K]>;

/** The session a call came on, and what its reply carries besides the result. */
export interface CallContext {
  /** the session's number, unique in this master's life */
  session: number;
  /** directory leases for the reply (proto/master.proto, DirLease) */
  dirLeases?: DirLease[];
  /** the call's retry key (proto/master.proto, Call.retry_key), if it has one */
  retryKey?: string;
  /** asks session `holder` to give up its lease on directory `dir` (ReplyBatch.recalled_dirs) */
  recall(holder: number, dir: number): void;
}

/** One handler per operation: translate the request, call the domain, answer or throw FsError. */
export type NamespaceOps = {
  [K in OpName]: (request: OpRequestIn<K>, context: CallContext) => OpResponse<K> | Promise<OpResponse<K>>;
};
