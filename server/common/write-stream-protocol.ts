import { FsError, isErrnoName, toFsError } from './fs-error';
import type { SocketReader } from './socket-reader';

/**
 * The chunk write stream: how chunk data travels client -> primary -> secondary -> ... on its
 * own TCP connections, beside the gRPC service (proto/chunkserver.proto, WriteAddress, says
 * where each chunkserver listens for it). Like HDFS's data transfer protocol, and for the same
 * reason: each hop forwards the bytes to the next replica as they arrive (cut-through), so a
 * piece crosses the chain in about the time of one transfer, not one per hop; and a byte costs
 * one kernel copy in and one out per hop. Over gRPC each hop received the whole message before
 * forwarding, held to HTTP/2's 64 KiB window (grpc-js servers cannot raise it), plus protobuf
 * and framing copies: the chain write ran at 37 MB/s.
 *
 * A connection carries requests one after the other (connections are pooled and reused):
 *
 *   request  = u32 magic "CFW1" | u32 H | header (H bytes) | data (header.length bytes)
 *   header   = u64 endpoint | u64 handle | u64 version | u64 offset (bytes from the chunk's start)
 *              | u32 length (bytes of data) | u8 flags | u16 n | n x (u16 L | L bytes of "HOST:PORT")
 *   reply    = u32 R | R bytes of JSON: {} when every replica has the data durably, else
 *              {"errno": "ESTALE", "message": "..."} (the message names the failing replica)
 *
 * Flags: bit 0, `create`: a replica that does not have the chunk creates it at `version` (the
 * first write of a new chunk, whose replicas the master placed without creating them).
 *
 * All integers little-endian. `endpoint` is the receiver's identity as WriteStreamPort told it:
 * a chunkserver restarted on another port may leave its old port to another process, and a
 * write meant for it must be refused there (EIO "wrong endpoint"), not applied. The chain (the n addresses) lists the gRPC addresses of the
 * replicas after the receiver, in forwarding order, as in TruncateChunk. The receiver always
 * reads a request's data to its end, also when it refuses the request, so the connection stays
 * usable; a malformed header (bad magic or size) closes the connection instead.
 */
export interface WriteHeader {
  /** The receiving endpoint's identity (WriteStreamPortResponse.endpoint). */
  endpoint: number;
  handle: number;
  version: number;
  offset: number;
  length: number;
  /** Create the chunk at `version` where it does not exist (see the flags above). */
  create: boolean;
  chain: string[];
}

const MAGIC = 0x31574643; // "CFW1" read as little-endian u32
/** Largest header accepted: a chain of a few dozen addresses fits many times over. */
const MAX_HEADER_BYTES = 16 * 1024;
const MAX_REPLY_BYTES = 64 * 1024;
const FIXED_HEADER_BYTES = 8 + 8 + 8 + 8 + 4 + 1 + 2;
const FLAG_CREATE = 1;

/** The bytes that precede a request's data: magic, header size and header. */
export function encodeRequestHead(h: WriteHeader): Buffer {
  const chain = h.chain.map((a) => Buffer.from(a, 'utf8'));
  const size = FIXED_HEADER_BYTES + chain.reduce((n, a) => n + 2 + a.length, 0);
  const buf = Buffer.allocUnsafe(8 + size);
  buf.writeUInt32LE(MAGIC, 0);
  buf.writeUInt32LE(size, 4);
  let at = 8;
  for (const v of [h.endpoint, h.handle, h.version, h.offset]) at = buf.writeBigUInt64LE(BigInt(v), at);
  at = buf.writeUInt32LE(h.length, at);
  at = buf.writeUInt8(h.create ? FLAG_CREATE : 0, at);
  at = buf.writeUInt16LE(chain.length, at);
  for (const a of chain) {
    at = buf.writeUInt16LE(a.length, at);
    at += a.copy(buf, at);
  }
  return buf;
}

/**
 * The next request's header from `reader`, or null when the peer closed the connection
 * between requests. A malformed head throws (the connection cannot be trusted to be in step).
 */
export async function readRequestHead(reader: SocketReader): Promise<WriteHeader | null> {
  const prefix = await reader.readExactly(8, true);
  if (prefix === null) return null;
  if (prefix.readUInt32LE(0) !== MAGIC) throw new FsError('EINVAL', 'not a chunk write stream request');
  const size = prefix.readUInt32LE(4);
  if (size < FIXED_HEADER_BYTES || size > MAX_HEADER_BYTES) throw new FsError('EINVAL', `bad write header size ${size}`);
  const buf = (await reader.readExactly(size))!;
  const [endpoint, handle, version, offset] = [0, 8, 16, 24].map((at) => safeNumber(buf.readBigUInt64LE(at)));
  const length = buf.readUInt32LE(32);
  const create = (buf.readUInt8(36) & FLAG_CREATE) !== 0;
  const chain: string[] = [];
  let at = FIXED_HEADER_BYTES;
  for (let i = buf.readUInt16LE(37); i > 0; i--) {
    const len = buf.readUInt16LE(at);
    if (at + 2 + len > size) throw new FsError('EINVAL', 'write header chain runs past the header');
    chain.push(buf.toString('utf8', at + 2, at + 2 + len));
    at += 2 + len;
  }
  return { endpoint, handle, version, offset, length, create, chain };
}

/** The reply to a request: success (null) or the error that failed it. */
export function encodeReply(err: unknown): Buffer {
  const fsErr = err === null ? null : toFsError(err);
  const body = Buffer.from(JSON.stringify(fsErr ? { errno: fsErr.code, message: fsErr.message.slice(`${fsErr.code}: `.length) } : {}), 'utf8');
  const buf = Buffer.allocUnsafe(4 + body.length);
  buf.writeUInt32LE(body.length, 0);
  body.copy(buf, 4);
  return buf;
}

/** Reads a reply: null on success, else the FsError that failed the write. */
export async function readReply(reader: SocketReader): Promise<FsError | null> {
  const size = (await reader.readExactly(4))!.readUInt32LE(0);
  if (size > MAX_REPLY_BYTES) throw new FsError('EIO', `write reply of ${size} bytes is too large`);
  const body = JSON.parse((await reader.readExactly(size))!.toString('utf8')) as { errno?: string; message?: string };
  if (body.errno === undefined) return null;
  return new FsError(isErrnoName(body.errno) ? body.errno : 'EIO', body.message ?? '');
}

/** A u64 as a number; beyond 2^53 it cannot be a real handle, version or offset. */
function safeNumber(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FsError('EINVAL', `write header field ${v} is too large`);
  return Number(v);
}
