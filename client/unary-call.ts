import type * as grpc from '@grpc/grpc-js';
import { FsError } from '../server/common/fs-error';
import { statusToFsError } from '../server/common/grpc-status';

/**
 * Runs one unary gRPC call with a deadline and settles with its reply or an FsError naming
 * `peer` (e.g. "master 127.0.0.1:9000"). The one place clients turn a gRPC status into FsError.
 */
export function unaryCall<Reply>(
  peer: string,
  deadlineMs: number,
  start: (options: grpc.CallOptions, done: grpc.requestCallback<Reply>) => void,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    start({ deadline: Date.now() + deadlineMs }, (err, reply) => {
      if (err) reject(statusToFsError(err, peer));
      else if (reply === undefined) reject(new FsError('EIO', `${peer} sent an empty reply`));
      else resolve(reply);
    });
  });
}
