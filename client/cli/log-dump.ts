import * as fs from 'fs';
import { FsError } from '../../server/common/fs-error';
import { readDirLog } from '../../server/master/oplog/log-reader';

/**
 * `chunkfs admin log`: every intact record with txid >= `from`, one JSON object per line
 * ({txid, epoch, file, offset, mutation}), then a line per damage or torn tail found. This is
 * the same reader recovery uses; backup and shadow masters will consume the log the same way.
 */
export function printLog(dir: string, from: number): void {
  if (!fs.existsSync(dir)) throw new FsError('ENOENT', `no such metadata directory: ${dir}`);
  const log = readDirLog(dir, from - 1);
  const txids = [...log.records.keys()].sort((a, b) => a - b);
  for (const t of txids) {
    const r = log.records.get(t)!;
    console.log(JSON.stringify({ txid: r.txid, epoch: r.epoch, file: r.file, offset: r.offset, mutation: JSON.parse(r.payload.toString()) }));
  }
  for (const d of log.damage) console.log(JSON.stringify({ damage: d }));
  if (log.tornTail) console.log(JSON.stringify({ tornTail: log.tornTail }));
}
