import type * as grpc from '@grpc/grpc-js';
import { randomInt } from 'crypto';
import type { ChunkFailure } from '../../generated/chunkfs/chunkserver/ChunkFailure';
import type { ChunkserverHandlers } from '../../generated/chunkfs/chunkserver/Chunkserver';
import type { LocalChunkDirs } from '../../generated/chunkfs/chunkserver/LocalChunkDirs';
import { type ChainWrite, ChunkClient, ChunkClientPool } from '../../client/chunk-client';
import { FsError, toFsError } from '../common/fs-error';
import { RunningServer, serveGrpc } from '../common/grpc-server';
import { bootId, dirIdentity } from '../common/host-identity';
import { logger } from '../common/log';
import { MAX_CHUNK_IO_BYTES, protos } from '../common/proto';
import type { SocketReader } from '../common/socket-reader';
import { unary } from '../common/unary-handler';
import { checkWriteRuns, type WriteHeader } from '../common/data-stream-protocol';
import type { ChunkStore } from './chunk-store';
import { KeyedMutex } from './keyed-mutex';
import { PieceBuffers } from './piece-buffers';
import { serveDataStream } from './data-stream-server';
import { TokenBucket } from './token-bucket';

const log = logger('chunk-service');

/**
 * Version a replica holds while CopyChunk fills it: never a real version (the service refuses
 * it in requests), so a copy cut short by a crash is stale by version, not passing for good.
 */
const COPYING_VERSION = 0;

/**
 * A write's bytes go to the next replica in batches of this many (bytes) as they arrive: a
 * send per socket read (64 KiB) cost a chunkserver more CPU in system calls, and the delay
 * a batch adds per hop (a millisecond or two) is small next to a piece's transfer and sync.
 */
const FORWARD_BYTES = 1024 * 1024;

/**
 * Default cap on re-replication copies a chunkserver pulls in, bytes/s (100 MB/s, the default
 * of HDFS's balancer bandwidth): about 80% of a 1 GbE link, so a recovery storm after a
 * server dies cannot starve clients on small machines, yet a 64 MiB chunk takes under a second
 * and the cap alone would let three receivers re-create 2 GiB in about 7 s. Faster networks
 * raise it with the flag.
 */
export const DEFAULT_COPY_BYTES_PER_SEC = 100e6;

export interface ChunkServiceOptions {
  /** Cap on the bytes/s CopyChunk pulls from peers, over all copies at once; 0: unlimited. */
  copyBytesPerSec?: number;
}

/**
 * The client/peer -> chunkserver service (proto/chunkserver.proto) over `store`, forwarding
 * truncates down their chain and pulling copies through `peers`; writes arrive on the write
 * stream (receiveChainWrite), ordered by the same `turns`.
 *
 * Ordering: every mutation of a chunk (write, truncate, create, copy, version change, delete)
 * takes the chunk's turn, in arrival order, and a write or truncate keeps it until the rest of
 * its chain has answered. So mutation n+1 reaches the next replica only after mutation n is
 * applied there, and every replica applies a chunk's mutations in the order of the chain's
 * head (the primary), with no sequence numbers or reordering buffers. The price is one chain
 * round trip per mutation of one chunk; different chunks proceed in parallel. The version
 * check happens inside the turn, so a version change cannot slip between check and write.
 * Reads take no turn: they change nothing, and the store serialises them with writes anyway.
 */
function chunkServiceHandlers(
  store: ChunkStore,
  peers: ChunkClientPool,
  turns: KeyedMutex<number>,
  writeEndpoint: { port: number; endpoint: number },
  options: ChunkServiceOptions = {},
): ChunkserverHandlers {
  // One second's worth may go at once after a quiet spell; beyond that, copies share the rate.
  const copyRate = options.copyBytesPerSec ?? DEFAULT_COPY_BYTES_PER_SEC;
  const copyLimit = new TokenBucket(copyRate, copyRate);
  return {
    DataStreamPort: unary(async () => ({ ...writeEndpoint, local: await localChunkDirs(store) })),
    Ping: unary(async () => ({})),
    TruncateChunk: unary(({ handle, version, size, chain }) =>
      turns.run(handle, async () => {
        checkVersion(store, handle, version);
        await hereAndDownChain(
          store.truncate(handle, size),
          downChain(peers, chain, (next, rest) => next.truncate(handle, version, size, rest)),
        );
        return {};
      }),
    ),
    CreateChunk: unary(({ handle, version }) => {
      checkRealVersion(version);
      return turns.run(handle, async () => {
        await store.create(handle, version);
        return {};
      });
    }),
    DeleteChunks: unary(async ({ handles }) => {
      const failures: ChunkFailure[] = [];
      // One after another: garbage collection must not crowd out reads and writes.
      for (const handle of handles) {
        try {
          await turns.run(handle, () => store.delete(handle));
        } catch (err) {
          const { code, message } = toFsError(err);
          failures.push({ handle, errno: code, message });
        }
      }
      return { failures };
    }),
    CopyChunk: unary(({ handle, version, source }) => {
      checkRealVersion(version);
      return turns.run(handle, async () => ({ bytes: await copyChunk(store, peers.get(source), handle, version, copyLimit) }));
    }),
  };
}

/**
 * One write from the data stream: in the chunk's turn, the version is checked, the data is
 * forwarded to the chain's next replica as it arrives and kept whole for the local write; the
 * answer waits for the local write (durable) and the rest of the chain. Resolves with null or
 * the error to answer; the data is read to its end either way. Throws only when `reader`
 * fails (the connection is lost), after aborting the forward so the next replica drops it too.
 */
async function receiveChainWrite(
  store: ChunkStore,
  peers: ChunkClientPool,
  turns: KeyedMutex<number>,
  pieces: PieceBuffers,
  endpoint: number,
  head: WriteHeader,
  reader: SocketReader,
): Promise<unknown> {
  const { handle, version, offset, length } = head;
  let unread = length;
  try {
    checkEndpoint(head, endpoint);
    checkIoSize('write data', length);
    const runs = checkWriteRuns(head);
    await turns.run(handle, async () => {
      // A new chunk's first write creates the replica (with the write's own syncs) where it is missing.
      const create = head.create && versionHere(store, handle) === null;
      if (create) checkRealVersion(version);
      else checkVersion(store, handle, version);
      const forward = downChain(peers, head.chain, (next, chain) => next.openWrite({ handle, version, offset, length, create: head.create, chain, runs: head.runs }));
      forward?.catch(() => undefined); // its failure is answered through its reply, below
      const piece = pieces.take(length);
      try {
        await receivePiece(reader, piece, forward, (bytes) => (unread -= bytes));
        const here = create ? store.write(handle, offset, piece, { createAtVersion: version }) : store.writeRuns(handle, runs, piece);
        await hereAndDownChain(here, forward?.then((f) => f.reply()));
      } finally {
        pieces.release(piece);
      }
    });
    return null;
  } catch (err) {
    if (unread > 0) await reader.skip(unread); // a lost connection throws from here: nothing to answer
    return err;
  }
}

/**
 * A write whose data stops coming for this long (ms) while this replica waits for it is dropped
 * with its connection, so that its chunk's turn is free again: an upstream replica that hangs
 * (stopped) mid-write cannot end the write itself, and the master's version change for the
 * writer's next lease waits for the turn. The data comes from memory at the chain's head, so a
 * live chain leaves no such gap. Longer than the pings take to find a hung replica (8 s, see
 * PingWatch), so that a sender which itself hangs is named by its own sender first; a sender
 * paused this long (a stopped `chunkfs put`) has its write fail.
 */
const UPSTREAM_STALL_MS = 15_000;

/**
 * Reads a write's data into `piece`, a batch at a time straight from the socket, each batch
 * forwarded down the chain as it lands while the next is received; `landed` counts each. A
 * reader failure, or a stall (UPSTREAM_STALL_MS), aborts the forward (the next replica drops
 * the partial write) and throws.
 */
async function receivePiece(reader: SocketReader, piece: Buffer, forward: Promise<ChainWrite> | undefined, landed: (bytes: number) => void): Promise<void> {
  const batchAt = (at: number): Buffer => piece.subarray(at, Math.min(at + FORWARD_BYTES, piece.length));
  const receive = (at: number): Promise<void> => {
    const done = reader.readInto(batchAt(at));
    done.catch(() => undefined); // awaited below; failing meanwhile is no unhandled rejection
    return done;
  };
  let at = 0;
  let receiving = piece.length > 0 ? receive(0) : null;
  while (receiving) {
    const stop = dropIfStalled(reader);
    await receiving.catch((err: unknown) => {
      void forward?.then((f) => f.abort(), () => undefined);
      throw err;
    }).finally(stop);
    const batch = batchAt(at);
    at += batch.length;
    landed(batch.length);
    receiving = at < piece.length ? receive(at) : null;
    // A failed forward fails its reply, which the caller answers: keep receiving.
    if (forward) await forward.then((f) => f.send(batch)).catch(() => undefined);
  }
}

/** Until the returned stop, closes `reader`'s connection once no byte came for UPSTREAM_STALL_MS. */
function dropIfStalled(reader: SocketReader): () => void {
  let timer: NodeJS.Timeout;
  const check = (after: number): void => {
    timer = setTimeout(() => {
      const idle = reader.idleMs();
      if (idle < UPSTREAM_STALL_MS) return check(UPSTREAM_STALL_MS - idle);
      reader.destroy(new Error(`no data for ${Math.round(idle)} ms in the middle of a write`));
    }, after);
  };
  check(UPSTREAM_STALL_MS);
  return () => clearTimeout(timer);
}

/** Sends a mutation to the chain's next replica with the rest of the chain; nothing at its end. */
function downChain<T>(
  peers: ChunkClientPool,
  chain: string[],
  send: (next: ChunkClient, rest: string[]) => Promise<T>,
): Promise<T> | undefined {
  const [next, ...rest] = chain;
  return next === undefined ? undefined : send(peers.get(next), rest);
}

/**
 * Waits for the local mutation and the forward down the chain (started together: the chain
 * does not wait for this replica's disk); fails if either did, with the local error first.
 */
async function hereAndDownChain(local: Promise<void>, forward: Promise<void> | undefined): Promise<void> {
  const [here, down] = await Promise.allSettled([local, forward]);
  if (here.status === 'rejected') throw here.reason;
  if (down.status === 'rejected') throw down.reason;
}

/**
 * Pulls a whole chunk from `source` into a new local replica, piece by piece, each piece read
 * at `version` (so a source whose version moves fails the copy with ESTALE) and checksum-
 * verified by the source's store. The replica gets `version` only once every piece is durable;
 * a failed copy removes it. Writes at the same version during the copy would be missed, so the
 * master must not copy a chunk while a lease on it is outstanding. Each piece is paid for in
 * `limit` before the next is read, which holds the copies to the bandwidth cap. Returns the
 * bytes copied.
 */
async function copyChunk(store: ChunkStore, source: ChunkClient, handle: number, version: number, limit: TokenBucket): Promise<number> {
  const current = versionHere(store, handle);
  if (current === version) return 0;
  if (current !== null) throw new FsError('EEXIST', `chunk ${handle} is here at version ${current}: delete it before copying version ${version}`);
  await store.create(handle, COPYING_VERSION);
  try {
    let offset = 0;
    for (;;) {
      const want = Math.min(MAX_CHUNK_IO_BYTES, store.chunkSize - offset);
      const piece = await source.read(handle, version, offset, want);
      await Promise.all([store.write(handle, offset, piece), limit.take(piece.length)]);
      offset += piece.length;
      if (piece.length < want || offset === store.chunkSize) break;
    }
    await store.setVersion(handle, version);
    return offset;
  } catch (err) {
    await store.delete(handle).catch((e: unknown) => log.warn(`cannot remove the partial copy of chunk ${handle}: ${String(e)}`));
    throw err;
  }
}

const thisBootId = bootId();

/** Where the store's chunk files are, for clients on this host (see LocalChunkDirs in the proto). */
async function localChunkDirs(store: ChunkStore): Promise<LocalChunkDirs> {
  const paths = store.healthyDirs();
  const identities = await Promise.all(paths.map(dirIdentity));
  const dirs = paths.flatMap((path, i) => {
    const identity = identities[i];
    return identity === null ? [] : [{ path, identity }];
  });
  return { bootId: await thisBootId, dirs };
}

/** The local replica's version, or null when this chunkserver has none. */
function versionHere(store: ChunkStore, handle: number): number | null {
  return store.has(handle) ? store.info(handle).version : null; // no ENOENT built (and its stack) for every new chunk
}

/** The replica must exist here (ENOENT) at exactly `version` (ESTALE). */
function checkVersion(store: ChunkStore, handle: number, version: number): void {
  checkRealVersion(version);
  const current = store.info(handle).version;
  if (current !== version) throw new FsError('ESTALE', `chunk ${handle} is at version ${current} here, not ${version}`);
}

function checkRealVersion(version: number): void {
  if (version === COPYING_VERSION) throw new FsError('EINVAL', `version ${COPYING_VERSION} is not a chunk version`);
}

function checkEndpoint(head: { endpoint: number }, endpoint: number): void {
  if (head.endpoint !== endpoint) throw new FsError('EIO', 'wrong endpoint: this request was meant for an earlier chunkserver process on this port');
}

function checkIoSize(what: string, bytes: number): void {
  if (bytes > MAX_CHUNK_IO_BYTES) throw new FsError('EINVAL', `${what} of ${bytes} bytes is more than the ${MAX_CHUNK_IO_BYTES} allowed per call`);
}

export interface ChunkRpc extends RunningServer {
  /** Calls being served now, waiting for their turn included (the load heartbeats report). */
  inFlight(): number;
}

/**
 * Serves the Chunkserver service over `store` on `listen` (HOST:PORT, port 0 allowed), with its
 * own pool of clients to peer chunkservers (closed by stop). The store stays the caller's.
 */
export async function startChunkRpc(store: ChunkStore, listen: string, options: ChunkServiceOptions = {}): Promise<ChunkRpc> {
  const peers = new ChunkClientPool();
  const turns = new KeyedMutex<number>();
  const load = { calls: 0 };
  const pieces = new PieceBuffers();
  // Random, so a later process on the same port (see data-stream-protocol.ts) differs.
  const endpoint = randomInt(2 ** 47);
  const counting = async <T>(serve: () => Promise<T>): Promise<T> => {
    load.calls++;
    try {
      return await serve();
    } finally {
      load.calls--;
    }
  };
  const writes = await serveDataStream(listen.slice(0, listen.lastIndexOf(':')), {
    write: (head, reader) => counting(() => receiveChainWrite(store, peers, turns, pieces, endpoint, head, reader)),
    read: (head) => counting(async () => {
      checkEndpoint(head, endpoint);
      checkIoSize('read length', head.length);
      checkVersion(store, head.handle, head.version);
      return store.read(head.handle, head.offset, head.length);
    }),
    setVersion: ({ endpoint: to, handle, version }) => counting(async () => {
      checkEndpoint({ endpoint: to }, endpoint);
      checkRealVersion(version);
      await turns.run(handle, async () => {
        const current = store.info(handle).version;
        if (version < current) throw new FsError('ESTALE', `chunk ${handle} is at version ${current} here, later than ${version}`);
        if (version > current) await store.setVersion(handle, version);
      });
    }),
  });
  const running = await serveGrpc(listen, (server) =>
    server.addService(protos.chunkfs.chunkserver.Chunkserver.service, counted(chunkServiceHandlers(store, peers, turns, { port: writes.port, endpoint }, options), load)))
    .catch((err: unknown) => {
      writes.stop();
      throw err;
    });
  return {
    address: running.address,
    inFlight: () => load.calls,
    stop: async () => {
      writes.stop();
      await running.stop();
      peers.closeAll();
    },
  };
}

/** `handlers`, each counted in `load.calls` from its call's arrival to its answer. */
function counted(handlers: ChunkserverHandlers, load: { calls: number }): ChunkserverHandlers {
  const count =
    <Req, Res>(handle: grpc.handleUnaryCall<Req, Res>): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) => {
      load.calls++;
      handle(call, (err, value) => {
        load.calls--;
        callback(err, value);
      });
    };
  return {
    DataStreamPort: count(handlers.DataStreamPort),
    TruncateChunk: count(handlers.TruncateChunk),
    CreateChunk: count(handlers.CreateChunk),
    DeleteChunks: count(handlers.DeleteChunks),
    CopyChunk: count(handlers.CopyChunk),
    Ping: handlers.Ping, // no work, no load
  };
}

