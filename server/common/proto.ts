import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as fs from 'fs';
import * as path from 'path';
import type { ProtoGrpcType as ChunkserverMasterProtos } from '../../generated/chunkserver_master';
import type { ProtoGrpcType as ChunkserverProtos } from '../../generated/chunkserver';
import type { ProtoGrpcType as MasterProtos } from '../../generated/master';
import { PACKAGE_ROOT } from './package-root';

/**
 * The gRPC contract, loaded once from proto/*.proto. The loader options must match the ones
 * `npm run gen` used for generated/ (longs as Number, enums as String, defaults, oneofs), or
 * the generated types would lie about the runtime objects.
 */
const PROTO_DIR = path.join(PACKAGE_ROOT, 'proto');

const definition = protoLoader.loadSync(
  fs.readdirSync(PROTO_DIR).filter((f) => f.endsWith('.proto')).sort(),
  { includeDirs: [PROTO_DIR], keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true },
);

/** Every package of every .proto; one generated ProtoGrpcType per file describes its part. */
export const protos = grpc.loadPackageDefinition(definition) as unknown as MasterProtos & ChunkserverMasterProtos & ChunkserverProtos;

/**
 * Largest gRPC message either side accepts, in bytes. A readdir page of 10000 entries is
 * about 0.6 MiB. (Chunk data does not travel over gRPC: see data-stream-protocol.ts.)
 */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Largest chunk read or write per request, in bytes (a write's piece, a read's length). */
export const MAX_CHUNK_IO_BYTES = 8 * 1024 * 1024;

/**
 * grpc-js waits longer and longer between attempts to reach a server that is down (up to two
 * minutes), and calls fail at once meanwhile: a peer back after an outage of a minute would be
 * left alone for as long again. An attempt every second is cheap on a cluster's network.
 */
export const PROMPT_RECONNECT = { 'grpc.initial_reconnect_backoff_ms': 200, 'grpc.max_reconnect_backoff_ms': 1000 } as const;

/** The message limits every ChunkFS channel and server uses (both directions). */
export const MESSAGE_LIMITS = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
} as const;
