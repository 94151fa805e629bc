import type { MasterAdminHandlers } from '../../generated/chunkfs/master/MasterAdmin';
import { unary } from '../common/unary-handler';
import type { MasterState } from './master-state';

/** The operator -> master service; MasterState's shapes are the wire shapes. */
export function adminHandlers(state: MasterState): MasterAdminHandlers {
  return {
    Checkpoint: unary(() => state.checkpoint()),
    Status: unary((req) => {
      if (req.collectGarbage) (globalThis as { gc?: () => void }).gc?.();
      return { ...state.status(), heapUsedBytes: process.memoryUsage().heapUsed };
    }),
  };
}
