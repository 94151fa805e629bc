import * as grpc from '@grpc/grpc-js';
import type { ChunkserverClient as ChunkserverStub } from '../generated/chunkfs/chunkserver/Chunkserver';
import type { CopyChunkResponse__Output } from '../generated/chunkfs/chunkserver/CopyChunkResponse';
import type { ReadChunkResponse__Output } from '../generated/chunkfs/chunkserver/ReadChunkResponse';
import { unaryCall } from './unary-call';
import { FsError } from '../server/common/fs-error';
import { MAX_MESSAGE_BYTES, MESSAGE_LIMITS, protos } from '../server/common/proto';

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

  constructor(
    readonly address: string,
    options: ChunkClientOptions = {},
  ) {
    this.deadlineMs = options.deadlineMs ?? 10_000;
    this.copyDeadlineMs = options.copyDeadlineMs ?? 120_000;
    this.stub = new protos.chunkfs.chunkserver.Chunkserver(address, grpc.credentials.createInsecure(), {
      ...MESSAGE_LIMITS,
      // A whole chunk piece (up to 8 MiB) in flight without waiting for window updates.
      'grpc-node.flow_control_window': MAX_MESSAGE_BYTES,
    });
  }

  /** Bytes [offset, offset + length) of the replica at `version`, short at the end of its data. */
  async read(handle: number, version: number, offset: number, length: number): Promise<Buffer> {
    const request = unsigned({ handle, version, offset, length });
    const reply = await this.call<ReadChunkResponse__Output>(this.deadlineMs, (o, cb) => this.stub.readChunk(request, o, cb));
    return reply.data;
  }

  /** Writes on this replica and then on each of `chain` in turn; resolves when all have it durably. */
  async write(handle: number, version: number, offset: number, data: Buffer, chain: string[] = []): Promise<void> {
    const request = { ...unsigned({ handle, version, offset }), data, chain };
    await this.call(this.chainDeadline(chain), (o, cb) => this.stub.writeChunk(request, o, cb));
  }

  /** Truncates this replica and each of `chain`, ordered with writes. */
  async truncate(handle: number, version: number, size: number, chain: string[] = []): Promise<void> {
    const request = { ...unsigned({ handle, version, size }), chain };
    await this.call(this.chainDeadline(chain), (o, cb) => this.stub.truncateChunk(request, o, cb));
  }

  async create(handle: number, version: number): Promise<void> {
    await this.call(this.deadlineMs, (o, cb) => this.stub.createChunk(unsigned({ handle, version }), o, cb));
  }

  async delete(handle: number): Promise<void> {
    await this.call(this.deadlineMs, (o, cb) => this.stub.deleteChunk(unsigned({ handle }), o, cb));
  }

  async setVersion(handle: number, version: number): Promise<void> {
    await this.call(this.deadlineMs, (o, cb) => this.stub.setChunkVersion(unsigned({ handle, version }), o, cb));
  }

  /** Has this chunkserver pull the chunk from `source` (HOST:PORT); resolves to the bytes copied. */
  async copy(handle: number, version: number, source: string): Promise<number> {
    const request = { ...unsigned({ handle, version }), source };
    const reply = await this.call<CopyChunkResponse__Output>(this.copyDeadlineMs, (o, cb) => this.stub.copyChunk(request, o, cb));
    return reply.bytes;
  }

  close(): void {
    this.stub.close();
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
  private call<Reply>(deadlineMs: number, start: (options: grpc.CallOptions, done: grpc.requestCallback<Reply>) => void): Promise<Reply> {
    return unaryCall(`replica ${this.address}`, deadlineMs, start).catch((err: FsError) => {
      throw onReplica(this.address, err);
    });
  }
}

/** One ChunkClient per chunkserver address, created on first use and reused. */
export class ChunkClientPool {
  private readonly clients = new Map<string, ChunkClient>();

  constructor(private readonly options: ChunkClientOptions = {}) {}

  get(address: string): ChunkClient {
    let client = this.clients.get(address);
    if (!client) {
      client = new ChunkClient(address, this.options);
      this.clients.set(address, client);
    }
    return client;
  }

  closeAll(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
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
