import type { MasterAdminHandlers } from '../../generated/chunkfs/master/MasterAdmin';
import { unary } from '../common/unary-handler';
import { chunkHealth } from './chunk-health';
import { fsck } from './fsck';
import type { MasterServices } from './master-rpc';

/** The operator -> master service; MasterState's shapes are the wire shapes. */
export function adminHandlers({ state, chunkservers, decommissioner }: MasterServices): MasterAdminHandlers {
  return {
    Checkpoint: unary(() => state.checkpoint()),
    Status: unary((req) => {
      if (req.collectGarbage) (globalThis as { gc?: () => void }).gc?.();
      return { ...state.status(), heapUsedBytes: process.memoryUsage().heapUsed };
    }),
    Fsck: unary((req) => fsck(state.ns, chunkservers, req.path || '/')),
    Report: unary(() => ({
      chunkservers: chunkservers.report(),
      chunks: chunkHealth(state.ns, chunkservers),
    })),
    Decommission: unary(async (req) => ({ chunkserver: await decommissioner.start(req.chunkserver) })),
  };
}
