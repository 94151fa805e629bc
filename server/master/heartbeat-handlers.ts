import type { ChunkserverMasterHandlers } from '../../generated/chunkfs/csmaster/ChunkserverMaster';
import { FsError } from '../common/fs-error';
import { unary } from '../common/unary-handler';
import type { ChunkserverRegistry } from './chunkserver-registry';

/** The chunkserver -> master service: heartbeats go straight into the registry. */
export function heartbeatHandlers(chunkservers: ChunkserverRegistry): ChunkserverMasterHandlers {
  return {
    Heartbeat: unary((req) => {
      if (!req.id || !req.address) throw new FsError('EINVAL', 'a heartbeat needs the chunkserver id and address');
      return chunkservers.heartbeat({
        id: req.id,
        address: req.address,
        rack: req.rack,
        capacityBytes: req.capacityBytes,
        usedBytes: req.usedBytes,
        freeBytes: req.freeBytes,
        load: req.load,
        fullReport: req.fullReport ? new Map(req.chunks.map((c) => [c.handle, c.version])) : null,
        lostChunks: req.lostChunks,
        corruptChunks: req.corruptChunks,
      });
    }),
  };
}
