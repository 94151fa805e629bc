import * as fs from 'fs';
import * as path from 'path';
import { StartupError } from '../../common/startup-error';
import { readU64, writeU64 } from './frame';

/**
 * Layout of one metadata directory:
 *
 *   edits_<first txid>.log       operation-log segments (16-byte header, then frames)
 *   checkpoint_<txid>.ckpt       namespace images covering every txid up to <txid>
 *   *.tmp                        checkpoints being written (ignored, removed on purge)
 *   in_use.lock                  pid of the master using the directory
 *
 * Every --meta-dir holds a full copy; file names carry 16-digit txids so they sort by name.
 */
export const SEGMENT_MAGIC = 'CFSLOG01';
export const CHECKPOINT_MAGIC = 'CFSCKP02';
export const FILE_HEADER_BYTES = 16;
const LOCK_FILE = 'in_use.lock';

export interface SegmentFile {
  path: string;
  firstTxid: number;
}
export interface CheckpointFile {
  path: string;
  txid: number;
}
export interface MetaDirListing {
  /** Oldest first. */
  segments: SegmentFile[];
  /** Newest first. */
  checkpoints: CheckpointFile[];
}

const pad = (txid: number) => String(txid).padStart(16, '0');
export const segmentPath = (dir: string, firstTxid: number) => path.join(dir, `edits_${pad(firstTxid)}.log`);
export const checkpointPath = (dir: string, txid: number) => path.join(dir, `checkpoint_${pad(txid)}.ckpt`);

/** Lists a metadata directory; a missing directory lists as empty. */
export function listMetaDir(dir: string): MetaDirListing {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { segments: [], checkpoints: [] };
    throw err;
  }
  const segments: SegmentFile[] = [];
  const checkpoints: CheckpointFile[] = [];
  for (const name of names) {
    let m = /^edits_(\d{16})\.log$/.exec(name);
    if (m) segments.push({ path: path.join(dir, name), firstTxid: Number(m[1]) });
    m = /^checkpoint_(\d{16})\.ckpt$/.exec(name);
    if (m) checkpoints.push({ path: path.join(dir, name), txid: Number(m[1]) });
  }
  segments.sort((a, b) => a.firstTxid - b.firstTxid);
  checkpoints.sort((a, b) => b.txid - a.txid);
  return { segments, checkpoints };
}

export function fileHeader(magic: string, txid: number): Buffer {
  const buf = Buffer.alloc(FILE_HEADER_BYTES);
  buf.write(magic, 0, 'latin1');
  writeU64(buf, txid, 8);
  return buf;
}

/** The txid in a file header, or null when the header is missing or not of this kind. */
export function readFileHeader(buf: Buffer, magic: string): number | null {
  if (buf.length < FILE_HEADER_BYTES || buf.toString('latin1', 0, 8) !== magic) return null;
  return readU64(buf, 8);
}

/** Makes a rename or file creation in `dir` durable. */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Claims the directory for this process. A lock left by a dead process (kill -9) is taken
 * over; one held by a live process is refused, so two masters never write one log.
 */
export function acquireLock(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const lock = path.join(dir, LOCK_FILE);
  let holder = NaN;
  try {
    holder = Number(fs.readFileSync(lock, 'utf8').trim());
  } catch {
    // no lock yet
  }
  if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
    throw new StartupError(`metadata directory ${dir} is in use by process ${holder}`);
  }
  fs.writeFileSync(lock, `${process.pid}\n`);
}

export function releaseLock(dir: string): void {
  try {
    const lock = path.join(dir, LOCK_FILE);
    if (Number(fs.readFileSync(lock, 'utf8').trim()) === process.pid) fs.unlinkSync(lock);
  } catch {
    // directory gone or lock taken over: nothing to release
  }
}

/**
 * Whether `pid` still runs. A killed master that its parent has not reaped yet (a zombie)
 * answers kill(pid, 0) like a live one, but holds nothing: a supervisor restarting it at once
 * must not be refused.
 */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

/**
 * Linux: every thread of `pid` has exited (state Z or X in /proc/PID/task/TID/stat). The main
 * thread alone is not enough: it turns zombie while another thread may still be finishing a
 * log write in the kernel, which must not land after a new master has recovered the log.
 */
function isZombie(pid: number): boolean {
  if (!fs.existsSync('/proc/self/task')) return false; // no /proc: kill(pid, 0) has answered
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return true; // gone since kill(pid, 0)
  }
  return tasks.every((tid) => {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
      const state = stat[stat.lastIndexOf(')') + 2];
      return state === 'Z' || state === 'X';
    } catch {
      return true; // this thread is gone
    }
  });
}
