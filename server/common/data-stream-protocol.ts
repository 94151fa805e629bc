import { FsError, isErrnoName, toFsError } from './fs-error';
import type { SocketReader } from './socket-reader';

/**
 * The chunk data stream: how chunk data travels, beside the gRPC service (proto/chunkserver.proto,
 * DataStreamPort, says where each chunkserver listens for it), on plain TCP connections.
 *
 * Writes go client -> primary -> secondary -> ...  Like HDFS's data transfer protocol, and for
 * the same reason: each hop forwards the bytes to the next replica as they arrive (cut-through),
 * so a piece crosses the chain in about the time of one transfer, not one per hop; and a byte
 * costs one kernel copy in and one out per hop. Over gRPC each hop received the whole message
 * before forwarding, held to HTTP/2's 64 KiB window (grpc-js servers cannot raise it), plus
 * protobuf and framing copies: the chain write ran at 37 MB/s.
 *
 * Reads come back the same way: over gRPC a read of 8 MiB cost both ends protobuf and HTTP/2
 * copies into fresh buffers and the garbage collections they bring, about half the CPU of a
 * 1 GiB read. The master's version changes (one per replica at every write lease) came here too:
 * a gRPC call's several HTTP/2 frames cost about 1.5 ms on loopback, this exchange two packets.
 *
 * A connection carries requests one after the other (connections are pooled and reused):
 *
 *   write request = u32 magic "CFW1" | u32 H | write header (H bytes) | data (header.length bytes)
 *   write header  = u64 endpoint | u64 handle | u64 version | u64 offset (bytes from the chunk's
 *                   start) | u32 length (bytes of data) | u8 flags | u16 n | n x (u16 L | L bytes
 *                   of "HOST:PORT") [| u16 m | m x (u64 offset | u32 length): runs]
 *   write reply   = status
 *   read request  = u32 magic "CFR1" | u32 H | read header (H bytes)
 *   read header   = u64 endpoint | u64 handle | u64 version | u64 offset | u32 length
 *   read reply    = status, then only on success: u32 N | N bytes of data (N <= length; short
 *                   only at the end of the chunk's data)
 *   version request = u32 magic "CFV1" | u32 H | version header (H bytes): the replica's new
 *                   version, which the master sets when it grants a write lease (the same
 *                   version: nothing to do; a lower one: ESTALE)
 *   version header  = u64 endpoint | u64 handle | u64 version
 *   version reply   = status (success: the replica has the version durably)
 *   status        = u32 R | R bytes of JSON: {} on success (for a write: every replica has the
 *                   data durably), else {"errno": "ESTALE", "message": "..."} (the message
 *                   names the failing replica)
 *
 * Write flags: bit 0, `create`: a replica that does not have the chunk creates it at `version`
 * (the first write of a new chunk, whose replicas the master placed without creating them).
 * Bit 1, `runs`: the data is several runs of the chunk (listed after the chain, in offset order,
 * disjoint; `offset` is the first's, `length` their sum), applied together and synced once, as
 * one write: a flush of scattered writes costs one sync per chunk, not one per run. Never with
 * `create`.
 *
 * All integers little-endian. `endpoint` is the receiver's identity as DataStreamPort told it:
 * a chunkserver restarted on another port may leave its old port to another process, and a
 * request meant for it must be refused there (EIO "wrong endpoint"), not applied. The chain
 * (the n addresses) lists the gRPC addresses of the replicas after the receiver, in forwarding
 * order, as in TruncateChunk. The receiver always reads a request's data to its end, also when
 * it refuses the request, so the connection stays usable; a malformed header (bad magic or
 * size) closes the connection instead.
 */
/** The fields reads and writes start with (a version request has the first three). */
interface ChunkRange {
  /** The receiving endpoint's identity (DataStreamPortResponse.endpoint). */
  endpoint: number;
  handle: number;
  version: number;
  offset: number;
  /** Bytes of data (a write's) or wanted (a read's). */
  length: number;
}

export interface WriteHeader extends ChunkRange {
  /** Create the chunk at `version` where it does not exist (see the flags above). */
  create: boolean;
  chain: string[];
  /** The runs the data is made of (see the flags above); absent: one run at `offset`. */
  runs?: WriteRun[];
}

/** Bytes [offset, offset + length) of a chunk, written from the data in turn. */
export interface WriteRun {
  offset: number;
  length: number;
}

/** Most runs in one write (a flush holds at most 128 of them: client/fs/open-file.ts). */
export const MAX_WRITE_RUNS = 256;

export type ReadHeader = ChunkRange;

export interface VersionHeader {
  endpoint: number;
  handle: number;
  version: number;
}

/** A request's head as the receiver parsed it. */
export type DataRequest =
  | { kind: 'write'; head: WriteHeader }
  | { kind: 'read'; head: ReadHeader }
  | { kind: 'version'; head: VersionHeader };

const WRITE_MAGIC = 0x31574643; // "CFW1" read as little-endian u32
const READ_MAGIC = 0x31524643; // "CFR1"
const VERSION_MAGIC = 0x31564643; // "CFV1"
/** Largest header accepted: a chain of a few dozen addresses fits many times over. */
const MAX_HEADER_BYTES = 16 * 1024;
const MAX_STATUS_BYTES = 64 * 1024;
const VERSION_HEADER_BYTES = 8 + 8 + 8;
const RANGE_BYTES = VERSION_HEADER_BYTES + 8 + 4;
const FIXED_WRITE_HEADER_BYTES = RANGE_BYTES + 1 + 2;
const FLAG_CREATE = 1;
const FLAG_RUNS = 2;
const RUN_BYTES = 8 + 4;

/** The bytes that precede a write's data: magic, header size and header. */
export function encodeWriteHead(h: WriteHeader): Buffer {
  const chain = h.chain.map((a) => Buffer.from(a, 'utf8'));
  const runs = h.runs ?? [];
  const runBytes = runs.length > 0 ? 2 + runs.length * RUN_BYTES : 0;
  const buf = startRequest(WRITE_MAGIC, h, FIXED_WRITE_HEADER_BYTES + chain.reduce((n, a) => n + 2 + a.length, 0) + runBytes);
  let at = 8 + RANGE_BYTES;
  at = buf.writeUInt8((h.create ? FLAG_CREATE : 0) | (runs.length > 0 ? FLAG_RUNS : 0), at);
  at = buf.writeUInt16LE(chain.length, at);
  for (const a of chain) {
    at = buf.writeUInt16LE(a.length, at);
    at += a.copy(buf, at);
  }
  if (runs.length > 0) {
    at = buf.writeUInt16LE(runs.length, at);
    for (const r of runs) {
      at = buf.writeBigUInt64LE(BigInt(r.offset), at);
      at = buf.writeUInt32LE(r.length, at);
    }
  }
  return buf;
}

/** A whole read request. */
export function encodeReadRequest(h: ReadHeader): Buffer {
  return startRequest(READ_MAGIC, h, RANGE_BYTES);
}

/** A whole version request. */
export function encodeVersionRequest(h: VersionHeader): Buffer {
  const buf = Buffer.allocUnsafe(8 + VERSION_HEADER_BYTES);
  buf.writeUInt32LE(VERSION_MAGIC, 0);
  buf.writeUInt32LE(VERSION_HEADER_BYTES, 4);
  let at = 8;
  for (const v of [h.endpoint, h.handle, h.version]) at = buf.writeBigUInt64LE(BigInt(v), at);
  return buf;
}

/** A request of `size` header bytes with magic, size and the range filled in. */
function startRequest(magic: number, h: ChunkRange, size: number): Buffer {
  const buf = Buffer.allocUnsafe(8 + size);
  buf.writeUInt32LE(magic, 0);
  buf.writeUInt32LE(size, 4);
  let at = 8;
  for (const v of [h.endpoint, h.handle, h.version, h.offset]) at = buf.writeBigUInt64LE(BigInt(v), at);
  buf.writeUInt32LE(h.length, at);
  return buf;
}

/** Smallest header of each kind of request, by magic. */
const MIN_HEADER_BYTES = new Map([[WRITE_MAGIC, FIXED_WRITE_HEADER_BYTES], [READ_MAGIC, RANGE_BYTES], [VERSION_MAGIC, VERSION_HEADER_BYTES]]);

/**
 * The next request's head from `reader` (a write's data follows it), or null when the peer
 * closed the connection between requests. A malformed head throws (the connection cannot be
 * trusted to be in step).
 */
export async function readRequest(reader: SocketReader): Promise<DataRequest | null> {
  const prefix = await reader.readExactly(8, true);
  if (prefix === null) return null;
  const magic = prefix.readUInt32LE(0);
  const min = MIN_HEADER_BYTES.get(magic);
  if (min === undefined) throw new FsError('EINVAL', 'not a chunk data stream request');
  const size = prefix.readUInt32LE(4);
  if (size < min || size > MAX_HEADER_BYTES) throw new FsError('EINVAL', `bad data stream header size ${size}`);
  const buf = (await reader.readExactly(size))!;
  const [endpoint, handle, version] = [0, 8, 16].map((at) => safeNumber(buf.readBigUInt64LE(at)));
  if (magic === VERSION_MAGIC) return { kind: 'version', head: { endpoint, handle, version } };
  const range = { endpoint, handle, version, offset: safeNumber(buf.readBigUInt64LE(24)), length: buf.readUInt32LE(32) };
  if (magic === READ_MAGIC) return { kind: 'read', head: range };
  const flags = buf.readUInt8(RANGE_BYTES);
  const create = (flags & FLAG_CREATE) !== 0;
  const chain: string[] = [];
  let at = FIXED_WRITE_HEADER_BYTES;
  for (let i = buf.readUInt16LE(RANGE_BYTES + 1); i > 0; i--) {
    if (at + 2 > size) throw new FsError('EINVAL', 'write header chain runs past the header');
    const len = buf.readUInt16LE(at);
    if (at + 2 + len > size) throw new FsError('EINVAL', 'write header chain runs past the header');
    chain.push(buf.toString('utf8', at + 2, at + 2 + len));
    at += 2 + len;
  }
  if ((flags & FLAG_RUNS) === 0) return { kind: 'write', head: { ...range, create, chain } };
  if (at + 2 > size) throw new FsError('EINVAL', 'write header runs past the header');
  const count = buf.readUInt16LE(at);
  at += 2;
  if (at + count * RUN_BYTES > size) throw new FsError('EINVAL', 'write header runs past the header');
  const runs: WriteRun[] = [];
  for (let i = 0; i < count; i++, at += RUN_BYTES) {
    runs.push({ offset: safeNumber(buf.readBigUInt64LE(at)), length: buf.readUInt32LE(at + 8) });
  }
  return { kind: 'write', head: { ...range, create, chain, runs } };
}

/**
 * A write's runs (one at `offset` when it lists none), or EINVAL when they are not in offset
 * order, disjoint and non-empty, starting at `offset` and adding up to `length`, or come with
 * `create` (a new chunk's first write is one run).
 */
export function checkWriteRuns(h: WriteHeader): WriteRun[] {
  const runs = h.runs ?? [{ offset: h.offset, length: h.length }];
  if (h.runs === undefined) return runs;
  const bad = (why: string): never => {
    throw new FsError('EINVAL', `write runs ${why}`);
  };
  if (h.create) bad('with create');
  if (runs.length === 0 || runs.length > MAX_WRITE_RUNS) bad(`number ${runs.length} (1..${MAX_WRITE_RUNS})`);
  if (runs[0].offset !== h.offset) bad(`start at ${runs[0].offset}, not at the write's offset ${h.offset}`);
  let total = 0;
  let end = 0;
  for (const r of runs) {
    if (r.length === 0 || r.offset < end) bad(`overlap, are out of order or empty at ${r.offset}`);
    end = r.offset + r.length;
    total += r.length;
  }
  if (total !== h.length) bad(`add up to ${total} bytes, not the write's ${h.length}`);
  return runs;
}

/** The status that answers a request: success (null) or the error that failed it. */
export function encodeStatus(err: unknown): Buffer {
  const fsErr = err === null ? null : toFsError(err);
  const body = Buffer.from(JSON.stringify(fsErr ? { errno: fsErr.code, message: fsErr.message.slice(`${fsErr.code}: `.length) } : {}), 'utf8');
  const buf = Buffer.allocUnsafe(4 + body.length);
  buf.writeUInt32LE(body.length, 0);
  body.copy(buf, 4);
  return buf;
}

/** The length prefix of a read's data (after a success status). */
export function encodeDataLength(n: number): Buffer {
  const buf = Buffer.allocUnsafe(4);
  buf.writeUInt32LE(n, 0);
  return buf;
}

/** Reads a status: null on success, else the FsError that failed the request. */
export async function readStatus(reader: SocketReader): Promise<FsError | null> {
  const size = (await reader.readExactly(4))!.readUInt32LE(0);
  if (size > MAX_STATUS_BYTES) throw new FsError('EIO', `data stream status of ${size} bytes is too large`);
  const body = JSON.parse((await reader.readExactly(size))!.toString('utf8')) as { errno?: string; message?: string };
  if (body.errno === undefined) return null;
  return new FsError(isErrnoName(body.errno) ? body.errno : 'EIO', body.message ?? '');
}

/**
 * The data of a successful read reply (after its status), at most `wanted` bytes: more would
 * mean the connection is out of step, which throws.
 */
export async function readData(reader: SocketReader, wanted: number): Promise<Buffer> {
  const n = (await reader.readExactly(4))!.readUInt32LE(0);
  if (n > wanted) throw new FsError('EIO', `read reply of ${n} bytes for ${wanted} asked`);
  const data = Buffer.allocUnsafe(n);
  await reader.readInto(data);
  return data;
}

/** A u64 as a number; beyond 2^53 it cannot be a real handle, version or offset. */
function safeNumber(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FsError('EINVAL', `data stream header field ${v} is too large`);
  return Number(v);
}
