import { performance } from 'perf_hooks';
import * as grpc from '@grpc/grpc-js';
import type { ChunkserverClient as ChunkserverStub } from '../generated/chunkfs/chunkserver/Chunkserver';
import type { CopyChunkResponse__Output } from '../generated/chunkfs/chunkserver/CopyChunkResponse';
import type { DeleteChunksResponse__Output } from '../generated/chunkfs/chunkserver/DeleteChunksResponse';
import type { DataStreamPortResponse__Output } from '../generated/chunkfs/chunkserver/DataStreamPortResponse';
import { PingWatch } from './ping-watch';
import { unaryCall } from './unary-call';
import { DataStreamPool } from './data-stream-client';
import { LocalChunkReads } from './local-chunk-reads';
import { FsError, isErrnoName } from '../server/common/fs-error';
import { MAX_CHUNK_IO_BYTES, MESSAGE_LIMITS, PROMPT_RECONNECT, protos } from '../server/common/proto';
import type { WriteHeader, WriteRun } from '../server/common/data-stream-protocol';

/** How long (ms) a chunkserver's word on its data directories is trusted for short-circuit reads. */
const LOCAL_DIRS_FRESH_MS = 1000;
/** How often (ms) a chunkserver whose files this client cannot read is asked again. */
const NOT_LOCAL_RECHECK_MS = 30_000;

export interface ChunkClientOptions {
  /**
   * Deadline of a call on one replica, in milliseconds (default 10 s). A write or truncate
   * through a chain of k more replicas gets (1 + k) times as long, and so does every forward
   * down the chain with its own k: the replica nearest the fault always times out first, so
   * the error names it rather than the replica waiting on it.
   */
  deadlineMs?: number;
  /** Deadline of CopyChunk, in milliseconds (default 120 s): it pulls a whole chunk. */
  copyDeadlineMs?: number;
  /**
   * Read the chunk files of chunkservers on this host directly (client/local-chunk-reads.ts)
   * rather than through them. Default false.
   */
  localReads?: boolean;
}

/**
 * Promise API over the Chunkserver service of one chunkserver (HOST:PORT). Every call carries a
 * deadline; every failure is an FsError whose message names the replica that failed (see
 * failedReplica): this one, or one further down a write's chain.
 */
export class ChunkClient {
  private readonly stub: ChunkserverStub;
  private readonly deadlineMs: number;
  private readonly copyDeadlineMs: number;
  /** Reads from this replica in progress (the pool sends the next read to a less busy one). */
  reading = 0;
  /** Connections to the chunkserver's data stream, once its port is known. */
  private dataStreams: Promise<DataStreamPool> | null = null;
  /** Its data directories this client can read itself (with `local`), as it said when asked at `localDirsAtMs`. */
  private localDirs: string[] = [];
  private localDirsAtMs = -Infinity;
  private localDirsAskedMs = -Infinity;
  private askingLocalDirs: Promise<void> | null = null;
  /** Pings it while requests wait long (see PingWatch). */
  private readonly liveness: PingWatch;

  constructor(
    readonly address: string,
    options: ChunkClientOptions = {},
    private readonly local: LocalChunkReads | null = null,
  ) {
    this.deadlineMs = options.deadlineMs ?? 10_000;
    this.copyDeadlineMs = options.copyDeadlineMs ?? 120_000;
    this.stub = new protos.chunkfs.chunkserver.Chunkserver(address, grpc.credentials.createInsecure(), { ...MESSAGE_LIMITS, ...PROMPT_RECONNECT });
    this.liveness = new PingWatch(`replica ${address}`, (ms) => unaryCall(`replica ${address}`, ms, (o, cb) => this.stub.ping({}, o, cb)));
  }

  /** Bytes [offset, offset + length) of the replica at `version`, short at the end of its data. */
  async read(handle: number, version: number, offset: number, length: number): Promise<Buffer> {
    const request = unsigned({ handle, version, offset, length });
    if (length > MAX_CHUNK_IO_BYTES) throw new FsError('EINVAL', `read length ${length} is more than the ${MAX_CHUNK_IO_BYTES} allowed per call`);
    this.reading++;
    try {
      const dirs = this.readableDirs();
      const here = dirs.length > 0 ? await this.local!.read(dirs, handle, version, offset, length) : null;
      if (here) return here;
      return await this.onDataStream((pool) => pool.read({ ...request, endpoint: pool.endpoint }, this.deadlineMs));
    } finally {
      this.reading--;
    }
  }

  /**
   * Writes on this replica and on each of `chain`, forwarded along it as the bytes arrive
   * (the data stream, server/common/data-stream-protocol.ts); resolves when all have it durably.
   * `create`: replicas that lack the chunk create it at `version` (a new chunk's first write).
   */
  async write(handle: number, version: number, offset: number, data: Buffer, chain: string[] = [], create = false): Promise<void> {
    await this.sendWrite({ ...unsigned({ handle, version, offset }), length: data.length, create, chain }, [data]);
  }

  /**
   * Runs of an existing chunk, `parts[i]` the bytes of `runs[i]`, on this replica and each of
   * `chain`, applied and synced as one write (data-stream-protocol.ts, the runs flag; one run
   * goes as a plain write).
   */
  async writeRuns(handle: number, version: number, runs: WriteRun[], parts: Buffer[], chain: string[] = []): Promise<void> {
    const length = parts.reduce((n, p) => n + p.length, 0);
    const head = { ...unsigned({ handle, version, offset: runs[0].offset }), length, create: false, chain };
    await this.sendWrite(runs.length > 1 ? { ...head, runs } : head, parts);
  }

  private async sendWrite(head: Omit<WriteHeader, 'endpoint'>, parts: Buffer[]): Promise<void> {
    const write = await this.openWrite(head);
    try {
      for (const part of parts) await write.send(part);
    } catch {
      // a failed send fails the reply too, with the cause
    }
    await write.reply();
  }

  /**
   * Starts a write of `head.length` bytes through this replica and `head.chain`: hand the data
   * to send() in order, then await reply(). Errors name the replica that failed.
   */
  async openWrite(head: Omit<WriteHeader, 'endpoint'>): Promise<ChainWrite> {
    this.liveness.checkResponsive();
    const deadlineMs = this.chainDeadline(head.chain);
    const startedAt = performance.now();
    let pool = await this.dataStreamPool();
    let write = pool.open({ ...head, endpoint: pool.endpoint }, deadlineMs);
    // As for setVersion: a chunkserver restarted on its address has its data stream on another
    // port, where the connection is refused; nothing was sent, so the port is asked again once,
    // within what is left of the deadline. Failing, this replica would be named failed and left
    // stale by the writer's next lease.
    if (await write.refused()) {
      await this.forgetPool(pool);
      pool = await this.dataStreamPool();
      write = pool.open({ ...head, endpoint: pool.endpoint }, Math.max(1, deadlineMs - (performance.now() - startedAt)));
    }
    const stopPinging = this.liveness.watch(deadlineMs, (silence) => write.abort(silence));
    return {
      send: (part) => write.send(part),
      abort: () => {
        stopPinging();
        write.abort(new FsError('EIO', 'write abandoned by the sender'));
      },
      reply: () => write.reply().catch((err: FsError) => {
        throw this.failedOn(pool, err);
      }).finally(stopPinging),
    };
  }

  /** Truncates this replica and each of `chain`, ordered with writes. */
  async truncate(handle: number, version: number, size: number, chain: string[] = []): Promise<void> {
    const request = { ...unsigned({ handle, version, size }), chain };
    await this.call(this.chainDeadline(chain), (o, cb) => this.stub.truncateChunk(request, o, cb));
  }

  async create(handle: number, version: number): Promise<void> {
    await this.call(this.deadlineMs, (o, cb) => this.stub.createChunk(unsigned({ handle, version }), o, cb));
  }

  /** Deletes replicas here; answers those that were not deleted, with why (ENOENT: not here). */
  async deleteChunks(handles: number[]): Promise<Array<{ handle: number; error: FsError }>> {
    handles.forEach((handle) => unsigned({ handle }));
    // Removed one after another: a long list gets time for each.
    const reply = await this.call<DeleteChunksResponse__Output>(this.deadlineMs + handles.length * 20, (o, cb) => this.stub.deleteChunks({ handles }, o, cb));
    return reply.failures.map((f) => ({ handle: f.handle, error: new FsError(isErrnoName(f.errno) ? f.errno : 'EIO', f.message) }));
  }

  /**
   * Moves the replica to `version` durably (the same version: nothing to do; a lower one:
   * ESTALE). A chunkserver restarted since the last request has another data stream port, which
   * that request finds gone (EIO) and the next one asks for: failing with EIO, it is tried once
   * more, since setting a version twice is the same as once (a lease grant would otherwise leave
   * a live replica behind, stale).
   */
  async setVersion(handle: number, version: number): Promise<void> {
    unsigned({ handle, version });
    const once = (): Promise<void> => this.onDataStream((pool) => pool.setVersion({ endpoint: pool.endpoint, handle, version }, this.deadlineMs));
    await once().catch((err: FsError) => (err.code === 'EIO' ? once() : Promise.reject(err)));
  }

  /** Runs one request on this replica's data stream; its errors name the replica. */
  private async onDataStream<T>(request: (pool: DataStreamPool) => Promise<T>): Promise<T> {
    this.liveness.checkResponsive();
    const pool = await this.dataStreamPool().catch((err: FsError) => {
      throw onReplica(this.address, err);
    });
    return this.unlessSilent(this.deadlineMs, request(pool)).catch((err: FsError) => {
      throw this.failedOn(pool, err);
    });
  }

  /** Has this chunkserver pull the chunk from `source` (HOST:PORT); resolves to the bytes copied. */
  async copy(handle: number, version: number, source: string): Promise<number> {
    const request = { ...unsigned({ handle, version }), source };
    const reply = await this.call<CopyChunkResponse__Output>(this.copyDeadlineMs, (o, cb) => this.stub.copyChunk(request, o, cb));
    return reply.bytes;
  }

  close(): void {
    void this.dataStreams?.then((pool) => pool.close(), () => undefined);
    this.dataStreams = null;
    this.stub.close();
  }

  /** Whether this client reads the chunkserver's files itself now. */
  get isLocal(): boolean {
    return this.readableDirs().length > 0;
  }

  /**
   * The chunkserver's data directories this client may read itself: as it said in an answer to
   * a question at most LOCAL_DIRS_FRESH_MS old. A chunkserver that stopped answering (dead, hung,
   * restarted elsewhere) or took a directory out of service no longer vouches for the files,
   * which may fall behind replicas written since. The question is asked again in the
   * background halfway through, and never waited for: without a fresh answer, reads go
   * through the chunkserver (and fail over as ever). [] without `local`.
   */
  private readableDirs(): string[] {
    if (!this.local) return [];
    const age = performance.now() - this.localDirsAtMs;
    if (age >= LOCAL_DIRS_FRESH_MS / 2) this.askLocalDirs();
    return age < LOCAL_DIRS_FRESH_MS ? this.localDirs : [];
  }

  private askLocalDirs(): void {
    const askedAt = performance.now();
    // One question at a time, and after a failure none for a while; a chunkserver that said its
    // files are not for this client (another host) is asked again rarely.
    const pause = this.localDirsAtMs > -Infinity && this.localDirs.length === 0 ? NOT_LOCAL_RECHECK_MS : LOCAL_DIRS_FRESH_MS / 2;
    if (this.askingLocalDirs || askedAt - this.localDirsAskedMs < pause) return;
    this.localDirsAskedMs = askedAt;
    this.askingLocalDirs = this.call<DataStreamPortResponse__Output>(this.deadlineMs, (o, cb) => this.stub.dataStreamPort({}, o, cb))
      .then(({ local }) => this.local!.visibleDirs(local))
      .then((dirs) => {
        this.localDirs = dirs;
        this.localDirsAtMs = askedAt;
      }, () => undefined)
      .finally(() => {
        this.askingLocalDirs = null;
      });
  }

  /** The pool of data stream connections, learning the port from the chunkserver once. */
  private dataStreamPool(): Promise<DataStreamPool> {
    if (!this.dataStreams) {
      const host = this.address.slice(0, this.address.lastIndexOf(':'));
      const asking = this.call<DataStreamPortResponse__Output>(this.deadlineMs, (o, cb) => this.stub.dataStreamPort({}, o, cb))
        .then(({ port, endpoint }) => new DataStreamPool(`${host}:${port}`, endpoint, `replica ${this.address}`));
      asking.catch(() => {
        if (this.dataStreams === asking) this.dataStreams = null;
      });
      this.dataStreams = asking;
    }
    return this.dataStreams;
  }

  /**
   * `err`, from a request on `pool`, named after its replica. When this chunkserver itself
   * failed it may have restarted on another port: the port is asked for again next time.
   */
  private failedOn(pool: DataStreamPool, err: FsError): FsError {
    const named = onReplica(this.address, err);
    if (failedReplica(named) === this.address) void this.forgetPool(pool);
    return named;
  }

  /** Unless it was replaced meanwhile, `pool` goes: the next request asks for the data stream port again. */
  private async forgetPool(pool: DataStreamPool): Promise<void> {
    const streams = this.dataStreams;
    const current = await streams?.catch(() => null);
    if (current !== pool || this.dataStreams !== streams) return;
    this.dataStreams = null;
    pool.close();
  }

  /**
   * A chain that repeats a replica (or names this one) would make a replica wait for its own
   * turn on the chunk until the deadline: refused before anything is sent.
   */
  private chainDeadline(chain: string[]): number {
    if (new Set([this.address, ...chain]).size !== chain.length + 1) {
      throw new FsError('EINVAL', `chain ${[this.address, ...chain].join(' -> ')} repeats a replica`);
    }
    return this.deadlineMs * (1 + chain.length);
  }

  /** Starts one unary call with the given deadline and settles with its reply or FsError. */
  private async call<Reply>(deadlineMs: number, start: (options: grpc.CallOptions, done: grpc.requestCallback<Reply>) => void): Promise<Reply> {
    this.liveness.checkResponsive();
    return this.unlessSilent(deadlineMs, unaryCall(`replica ${this.address}`, deadlineMs, start)).catch((err: FsError) => {
      throw onReplica(this.address, err);
    });
  }

  /**
   * `request` (of at most `deadlineMs`), or ETIMEDOUT as soon as pings find this chunkserver
   * silent (see PingWatch); the request is then left to its own deadline.
   */
  private async unlessSilent<T>(deadlineMs: number, request: Promise<T>): Promise<T> {
    let stop = (): void => undefined;
    const silent = new Promise<never>((_resolve, reject) => (stop = this.liveness.watch(deadlineMs, reject)));
    request.catch(() => undefined); // its failure after silence is nobody's to hear
    try {
      return await Promise.race([request, silent]);
    } finally {
      stop();
    }
  }
}

/** A write started by ChunkClient.openWrite. */
export interface ChainWrite {
  /** The next bytes of the data, in order; resolves when more may be sent. */
  send(part: Buffer): Promise<void>;
  /** After the last byte: resolves when every replica of the chain has the data durably. */
  reply(): Promise<void>;
  /** Abandons the write: the connection is closed and the replicas drop what they received. */
  abort(): void;
}

/** One ChunkClient per chunkserver address, created on first use and reused. */
export class ChunkClientPool {
  private readonly clients = new Map<string, ChunkClient>();
  /** Short-circuit reads, shared by the pool's clients (with `localReads`). */
  readonly local: LocalChunkReads | null;

  constructor(private readonly options: ChunkClientOptions = {}) {
    this.local = options.localReads ? new LocalChunkReads() : null;
  }

  get(address: string): ChunkClient {
    let client = this.clients.get(address);
    if (!client) {
      client = new ChunkClient(address, this.options, this.local);
      this.clients.set(address, client);
    }
    return client;
  }

  /**
   * `replicas` in the order to read from them: those this client reads through their files
   * first (short-circuit reads cost no socket hop), then the fewest reads in progress from this
   * pool, and among equals an order rotated by `spread` (the chunk's handle, say), so that
   * reads of different chunks start on different replicas instead of all on the first listed.
   */
  byReadLoad(replicas: string[], spread: number): string[] {
    const n = replicas.length;
    const keys = replicas.map((address, i) => {
      const client = this.get(address);
      return [client.isLocal ? 0 : 1, client.reading, ((i - spread) % n + n) % n];
    });
    const order = (a: number, b: number): number => keys[a][0] - keys[b][0] || keys[a][1] - keys[b][1] || keys[a][2] - keys[b][2];
    return replicas.map((_r, i) => i).sort(order).map((i) => replicas[i]);
  }

  closeAll(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
    this.local?.close();
  }
}

/**
 * The HOST:PORT of the replica a ChunkClient call failed on, or null for an error that did not
 * come from one. Errors read "ERRNO: replica HOST:PORT: ..." or "ERRNO: replica HOST:PORT
 * unreachable ..." (statusToFsError's wording).
 */
export function failedReplica(err: FsError): string | null {
  return /^\w+: replica (\S+?):? /.exec(err.message)?.[1] ?? null;
}

/**
 * The numbers of a request, checked: protobufjs silently sends a negative or fractional number
 * as another one (-1 arrives as 0), which the chunkserver could not tell from a real request.
 */
function unsigned<T extends Record<string, number>>(fields: T): T {
  for (const [name, value] of Object.entries(fields)) {
    if (!Number.isSafeInteger(value) || value < 0) throw new FsError('EINVAL', `${name} must be a non-negative integer, got ${value}`);
  }
  return fields;
}

/**
 * `err` as answered by the replica at `address`. An error already naming a replica came from
 * further down the chain and keeps that name.
 */
function onReplica(address: string, err: FsError): FsError {
  if (failedReplica(err) !== null) return err;
  return new FsError(err.code, `replica ${address}: ${err.message.slice(`${err.code}: `.length)}`);
}
