import { RunningServer, serveGrpc } from '../common/grpc-server';
import { protos } from '../common/proto';
import { adminHandlers } from './admin-handlers';
import type { ChunkManager } from './chunk-manager';
import type { ChunkserverRegistry } from './chunkserver-registry';
import type { Decommissioner } from './decommission';
import { heartbeatHandlers } from './heartbeat-handlers';
import { namespaceOps } from './master-handlers';
import { SessionRegistry, sessionHandler } from './master-session';
import type { MasterState } from './master-state';

export type MasterRpc = RunningServer;

/** What the master's services work on. */
export interface MasterServices {
  state: MasterState;
  chunkservers: ChunkserverRegistry;
  chunks: ChunkManager;
  decommissioner: Decommissioner;
}

/**
 * Serves the Master, MasterAdmin and ChunkserverMaster services on `listen` (HOST:PORT, port 0
 * allowed). Stopping ends each client's session stream once its calls in flight are answered.
 */
export async function startMasterRpc(services: MasterServices, listen: string): Promise<MasterRpc> {
  const sessions = new SessionRegistry();
  const running = await serveGrpc(listen, (server) => {
    server.addService(protos.chunkfs.master.Master.service, { Session: sessionHandler(namespaceOps(services.state, services.chunkservers, services.chunks), sessions) });
    server.addService(protos.chunkfs.master.MasterAdmin.service, adminHandlers(services));
    server.addService(protos.chunkfs.csmaster.ChunkserverMaster.service, heartbeatHandlers(services.chunkservers));
  });
  return {
    address: running.address,
    stop: () => {
      sessions.drainAll();
      return running.stop();
    },
  };
}
