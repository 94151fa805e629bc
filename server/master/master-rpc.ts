import { RunningServer, serveGrpc } from '../common/grpc-server';
import { protos } from '../common/proto';
import { unary } from '../common/unary-handler';
import { adminHandlers } from './admin-handlers';
import type { ChunkManager } from './chunk-manager';
import type { ChunkserverRegistry } from './chunkserver-registry';
import type { Decommissioner } from './decommission';
import { heartbeatHandlers } from './heartbeat-handlers';
import { namespaceOps, type NamespaceOptions } from './master-handlers';
import { serveSessions } from './master-session';
import type { MasterState } from './master-state';

export interface MasterRpc extends RunningServer {
  /** Where sessions are taken (what Master.SessionPort answers). */
  sessionPort: number;
}

/** What the master's services work on. */
export interface MasterServices {
  state: MasterState;
  chunkservers: ChunkserverRegistry;
  chunks: ChunkManager;
  decommissioner: Decommissioner;
}

/**
 * Serves the Master, MasterAdmin and ChunkserverMaster services on `listen` (HOST:PORT, port 0
 * allowed), and sessions on a free port of the same host (Master.SessionPort says which).
 * Stopping ends each client's session once its calls in flight are answered.
 */
export async function startMasterRpc(services: MasterServices, listen: string, options: NamespaceOptions = {}): Promise<MasterRpc> {
  const host = listen.slice(0, listen.lastIndexOf(':'));
  const sessions = await serveSessions(host, namespaceOps(services.state, services.chunkservers, services.chunks, options));
  const running = await serveGrpc(listen, (server) => {
    server.addService(protos.chunkfs.master.Master.service, { SessionPort: unary(() => ({ port: sessions.port })) });
    server.addService(protos.chunkfs.master.MasterAdmin.service, adminHandlers(services));
    server.addService(protos.chunkfs.csmaster.ChunkserverMaster.service, heartbeatHandlers(services.chunkservers));
  }).catch(async (err: unknown) => {
    await sessions.stop();
    throw err;
  });
  return {
    address: running.address,
    sessionPort: sessions.port,
    stop: async () => {
      await Promise.all([sessions.stop(), running.stop()]);
    },
  };
}
