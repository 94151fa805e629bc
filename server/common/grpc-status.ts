import * as grpc from '@grpc/grpc-js';
import { ErrnoName, FsError, isErrnoName, toFsError } from './fs-error';
import { logger } from './log';

const log = logger('rpc');

/** Metadata key carrying the errno name of a failed call (see proto/master.proto). */
export const ERRNO_METADATA_KEY = 'chunkfs-errno';

/**
 * gRPC code for each errno. ChunkFS clients read the errno from metadata; the code is for
 * everything else (gRPC tooling, retry policies): UNAVAILABLE means "try again, maybe on
 * another master", which is what EAGAIN and EROFS (a master that may not write) ask for.
 */
const GRPC_CODE: Partial<Record<ErrnoName, grpc.status>> = {
  ENOENT: grpc.status.NOT_FOUND,
  ENODATA: grpc.status.NOT_FOUND,
  EEXIST: grpc.status.ALREADY_EXISTS,
  EINVAL: grpc.status.INVALID_ARGUMENT,
  ENAMETOOLONG: grpc.status.INVALID_ARGUMENT,
  EACCES: grpc.status.PERMISSION_DENIED,
  EPERM: grpc.status.PERMISSION_DENIED,
  ENOSPC: grpc.status.RESOURCE_EXHAUSTED,
  EMLINK: grpc.status.RESOURCE_EXHAUSTED,
  EFBIG: grpc.status.OUT_OF_RANGE,
  EAGAIN: grpc.status.UNAVAILABLE,
  EROFS: grpc.status.UNAVAILABLE,
  ETIMEDOUT: grpc.status.DEADLINE_EXCEEDED,
  ENOSYS: grpc.status.UNIMPLEMENTED,
  EIO: grpc.status.INTERNAL,
  // a chunk replica's version differs from the one the caller was told (refresh from the master)
  ESTALE: grpc.status.FAILED_PRECONDITION,
};

/** Server side: the status a handler answers for anything it caught. */
export function fsErrorToStatus(err: unknown): Partial<grpc.StatusObject> {
  if (!(err instanceof FsError)) log.error(`unexpected error in RPC handler: ${err instanceof Error ? err.stack : String(err)}`);
  const fsErr = toFsError(err);
  const metadata = new grpc.Metadata();
  metadata.set(ERRNO_METADATA_KEY, fsErr.code);
  return {
    code: GRPC_CODE[fsErr.code] ?? grpc.status.FAILED_PRECONDITION,
    details: fsErr.message,
    metadata,
  };
}

/**
 * Client side: the FsError for a failed call to `server` (HOST:PORT, for the message). A
 * status without the errno key never reached a ChunkFS handler: the server is unreachable, too
 * slow, or not ChunkFS.
 */
export function statusToFsError(err: grpc.ServiceError, server = 'server'): FsError {
  const [errno] = err.metadata?.get(ERRNO_METADATA_KEY) ?? [];
  if (typeof errno === 'string' && isErrnoName(errno)) {
    // FsError messages already start with "ERRNO: "; keep it once.
    const prefix = `${errno}: `;
    return new FsError(errno, err.details.startsWith(prefix) ? err.details.slice(prefix.length) : err.details);
  }
  switch (err.code) {
    case grpc.status.DEADLINE_EXCEEDED:
      return new FsError('ETIMEDOUT', `${server} did not answer in time (${err.details})`);
    case grpc.status.UNAVAILABLE:
      return new FsError('EIO', `${server} unreachable (${err.details})`);
    case grpc.status.UNIMPLEMENTED:
      return new FsError('ENOSYS', `${server} does not implement this call (${err.details})`);
    default:
      return new FsError('EIO', `${server} failed: ${grpc.status[err.code] ?? err.code}: ${err.details}`);
  }
}
