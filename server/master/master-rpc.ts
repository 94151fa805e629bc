import * as grpc from '@grpc/grpc-js';
import { FsError } from '../common/fs-error';
import { MAX_MESSAGE_BYTES, protos } from '../common/proto';
import { adminHandlers } from './admin-handlers';
import type { ChunkserverRegistry } from './chunkserver-registry';
import { heartbeatHandlers } from './heartbeat-handlers';
import { namespaceOps } from './master-handlers';
import { SessionRegistry, sessionHandler } from './master-session';
import type { MasterState } from './master-state';

export interface MasterRpc {
  /** HOST:PORT actually bound (the real port when `listen` asked for port 0). */
  address: string;
  /** Stops accepting calls, lets running ones finish (up to a grace period), then closes. */
  stop(): Promise<void>;
}

/** How long stop() waits for calls in flight before cutting connections. */
const STOP_GRACE_MS = 5000;

/** What the master's services work on. */
export interface MasterServices {
  state: MasterState;
  chunkservers: ChunkserverRegistry;
  /** Cluster default replication factor. */
  replication: number;
}

/**
 * Serves the Master, MasterAdmin and ChunkserverMaster services on `listen` (HOST:PORT, port 0
 * allowed).
 */
export async function startMasterRpc(services: MasterServices, listen: string): Promise<MasterRpc> {
  const colon = listen.lastIndexOf(':');
  if (colon <= 0) throw new FsError('EINVAL', `listen address must be HOST:PORT, got ${JSON.stringify(listen)}`);
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  });
  const sessions = new SessionRegistry();
  server.addService(protos.chunkfs.master.Master.service, { Session: sessionHandler(namespaceOps(services.state), sessions) });
  server.addService(protos.chunkfs.master.MasterAdmin.service, adminHandlers(services));
  server.addService(protos.chunkfs.csmaster.ChunkserverMaster.service, heartbeatHandlers(services.chunkservers));
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(new FsError('EIO', `cannot listen on ${listen}: ${err.message}`)) : resolve(bound));
  });
  return {
    address: `${listen.slice(0, colon)}:${port}`,
    stop: () => {
      sessions.drainAll();
      return shutDown(server);
    },
  };
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
