import * as fs from 'fs';
import { decodeFrame, findIntactFrameAfter } from './frame';
import { FILE_HEADER_BYTES, listMetaDir, readFileHeader, SEGMENT_MAGIC } from './meta-dir';

/** One intact record and where it lies (for error messages). */
export interface LogRecord {
  txid: number;
  epoch: number;
  payload: Buffer;
  file: string;
  offset: number;
}

/** Damage that is followed by more data: records were lost in the middle of the log. */
export interface LogDamage {
  file: string;
  offset: number;
  /** Last intact txid before the damage in this directory. */
  afterTxid: number;
  reason: string;
}

/** Damage at the very end of a directory's log: an unacknowledged write cut short. */
export interface TornTail {
  file: string;
  offset: number;
}

export interface DirLog {
  dir: string;
  /** Intact records with txid > fromTxid, by txid. */
  records: Map<number, LogRecord>;
  damage: LogDamage[];
  tornTail: TornTail | null;
  /** Highest txid known to have been written (intact records, records past damage, segment names). */
  maxTxid: number;
}

/**
 * Reads every segment of one metadata directory that may hold txids in (fromTxid, toTxid]. Within
 * a segment txids must run consecutively from the segment's first txid. Damage (bad CRC, short
 * frame, wrong txid, bad header) ends what can be read of that segment; it is a torn tail only
 * when it is in the directory's last segment and no intact record follows it.
 */
export function readDirLog(dir: string, fromTxid: number, toTxid = Infinity): DirLog {
  const { segments } = listMetaDir(dir);
  const out: DirLog = { dir, records: new Map(), damage: [], tornTail: null, maxTxid: 0 };
  segments.forEach((seg, i) => {
    const next = segments[i + 1];
    if (next && next.firstTxid <= fromTxid + 1) return; // wholly covered by the checkpoint
    if (seg.firstTxid > toTxid) return; // wholly after what is wanted
    const isLast = i === segments.length - 1;
    const buf = fs.readFileSync(seg.path);
    const first = readFileHeader(buf, SEGMENT_MAGIC);
    if (first === null || first !== seg.firstTxid) {
      if (isLast && buf.length <= FILE_HEADER_BYTES && !findIntactFrameAfter(buf, -1, seg.firstTxid - 1)) {
        out.tornTail = { file: seg.path, offset: 0 };
      } else {
        out.damage.push({ file: seg.path, offset: 0, afterTxid: seg.firstTxid - 1, reason: 'bad segment header' });
      }
      return;
    }
    // A segment starting at F proves that records up to F-1 were written.
    out.maxTxid = Math.max(out.maxTxid, seg.firstTxid - 1);
    let expected = seg.firstTxid;
    let off = FILE_HEADER_BYTES;
    while (off < buf.length) {
      const f = decodeFrame(buf, off);
      if (!f || f.txid !== expected) {
        const reason = f ? `txid ${f.txid} where ${expected} was expected` : 'damaged record (length or CRC32C)';
        const later = findIntactFrameAfter(buf, off, expected - 1);
        if (isLast && !later && !f) out.tornTail = { file: seg.path, offset: off };
        else out.damage.push({ file: seg.path, offset: off, afterTxid: expected - 1, reason });
        if (later) out.maxTxid = Math.max(out.maxTxid, later.txid);
        return;
      }
      if (f.txid > fromTxid && f.txid <= toTxid) {
        out.records.set(f.txid, { txid: f.txid, epoch: f.epoch, payload: f.payload, file: seg.path, offset: off });
      }
      if (f.txid > out.maxTxid) out.maxTxid = f.txid;
      expected++;
      off = f.end;
    }
  });
  return out;
}

/** Cuts a torn tail off so that later segments never follow damage. */
export function truncateTornTail(tail: TornTail): void {
  fs.truncateSync(tail.file, tail.offset);
  const fd = fs.openSync(tail.file, 'r+');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
