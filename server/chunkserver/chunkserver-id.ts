import { randomUUID } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

const ID_FILE = 'chunkserver.id';

/**
 * The chunkserver's stable identity, kept in every data directory so that it survives the
 * loss of any one of them and a change of address. Masters key replicas by it, so a
 * chunkserver that returns (even on another port) is recognised and its stale replicas found.
 */
export function loadOrCreateChunkserverId(dataDirs: string[]): string {
  let id = '';
  for (const dir of dataDirs) {
    try {
      id = fs.readFileSync(path.join(dir, ID_FILE), 'utf8').trim();
      if (id) break;
    } catch {
      // not in this directory (new, or lost): look in the next
    }
  }
  id ||= randomUUID();
  for (const dir of dataDirs) {
    try {
      fs.mkdirSync(dir, { recursive: true });
      const file = path.join(dir, ID_FILE);
      if (!fs.existsSync(file)) fs.writeFileSync(file, `${id}\n`);
    } catch {
      // a failing directory is the chunk store's business; the id lives in the others
    }
  }
  return id;
}
