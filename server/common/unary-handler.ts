import type * as grpc from '@grpc/grpc-js';
import { performance } from 'perf_hooks';
import { ERRNO_METADATA_KEY, fsErrorToStatus } from './grpc-status';
import { logger } from './log';

const log = logger('rpc');

/**
 * Adapts `(request) => response` (sync or async, throwing FsError) to a grpc-js unary handler,
 * so handler maps contain only the translation and every failure goes through fsErrorToStatus.
 * At debug level, one line per call: method, request, outcome, duration.
 */
export function unary<Req, Res>(
  handle: (request: Req) => Res | Promise<Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const start = log.debugEnabled ? performance.now() : 0;
    const done = (outcome: string): void => {
      if (!log.debugEnabled) return;
      const ms = (performance.now() - start).toFixed(3);
      log.debug(`${call.getPath()} ${JSON.stringify(call.request)} ${outcome} ${ms}ms`);
    };
    // Promise.resolve().then also routes a synchronous throw to the error path.
    Promise.resolve(call.request)
      .then(handle)
      .then(
        (response) => {
          done('ok');
          callback(null, response);
        },
        (err: unknown) => {
          const status = fsErrorToStatus(err);
          done(String(status.metadata?.get(ERRNO_METADATA_KEY)[0]));
          callback(status);
        },
      );
  };
}
