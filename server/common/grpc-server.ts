import * as grpc from '@grpc/grpc-js';
import { FsError } from './fs-error';
import { MESSAGE_LIMITS } from './proto';

export interface RunningServer {
  /** HOST:PORT actually bound (the real port when `listen` asked for port 0). */
  address: string;
  /** Stops accepting calls, lets running ones finish (up to a grace period), then closes. */
  stop(): Promise<void>;
}

/** How long stop() waits for calls in flight before cutting connections. */
const STOP_GRACE_MS = 5000;

/**
 * A grpc-js server with our message limits, its services added by `register`, bound to
 * `listen` (HOST:PORT, port 0 allowed). Shared by every ChunkFS server process.
 */
export async function serveGrpc(listen: string, register: (server: grpc.Server) => void): Promise<RunningServer> {
  const colon = listen.lastIndexOf(':');
  if (colon <= 0) throw new FsError('EINVAL', `listen address must be HOST:PORT, got ${JSON.stringify(listen)}`);
  const server = new grpc.Server(MESSAGE_LIMITS);
  register(server);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(new FsError('EIO', `cannot listen on ${listen}: ${err.message}`)) : resolve(bound));
  });
  return { address: `${listen.slice(0, colon)}:${port}`, stop: () => shutDown(server) };
}

function shutDown(server: grpc.Server): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, STOP_GRACE_MS);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}
