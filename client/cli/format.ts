import { S_ISGID, S_ISUID } from '../../server/master/inode';
import type { Attr } from '../../server/master/inode';
import { fileType, FileType } from '../file-type';

/** An entry to print: the name to show, its attributes, and its target when it is a symlink. */
export interface ListedEntry {
  name: string;
  attr: Attr;
  target?: string;
}

const S_ISVTX = 0o1000;
const TYPE_CHAR: Record<FileType, string> = { directory: 'd', file: '-', symlink: 'l', other: '?' };
const TYPE_NAME: Record<FileType, string> = {
  directory: 'directory', file: 'regular file', symlink: 'symbolic link', other: 'unknown',
};
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** ls shows the time of day for files changed within about six months, else the year. */
const RECENT_MS = 182 * 24 * 3600 * 1000;

/** "drwxr-sr-t" as ls -l shows an st_mode. */
export function modeString(mode: number): string {
  const triple = (shift: number, special: number, specialChar: string): string => {
    const x = (mode >> shift) & 1;
    const exec = mode & special ? (x ? specialChar : specialChar.toUpperCase()) : x ? 'x' : '-';
    return ((mode >> shift) & 4 ? 'r' : '-') + ((mode >> shift) & 2 ? 'w' : '-') + exec;
  };
  return TYPE_CHAR[fileType(mode)] + triple(6, S_ISUID, 's') + triple(3, S_ISGID, 's') + triple(0, S_ISVTX, 't');
}

/** ls -l lines, columns aligned like ls(1). */
export function longListing(entries: readonly ListedEntry[], now = Date.now()): string[] {
  const width = (pick: (a: Attr) => number): number => Math.max(0, ...entries.map((e) => String(pick(e.attr)).length));
  const [wLinks, wUid, wGid, wSize] = [width((a) => a.nlink), width((a) => a.uid), width((a) => a.gid), width((a) => a.size)];
  return entries.map(({ name, attr, target }) =>
    [
      modeString(attr.mode),
      String(attr.nlink).padStart(wLinks),
      String(attr.uid).padEnd(wUid),
      String(attr.gid).padEnd(wGid),
      String(attr.size).padStart(wSize),
      lsTime(attr.mtimeMs, now),
      target === undefined ? name : `${name} -> ${target}`,
    ].join(' '));
}

/** stat(1)-like description of one inode. */
export function statText(entry: ListedEntry): string {
  const { attr } = entry;
  const name = entry.target === undefined ? entry.name : `${entry.name} -> ${entry.target}`;
  const perm = (attr.mode & 0o7777).toString(8).padStart(4, '0');
  return [
    `  File: ${name}`,
    `  Size: ${attr.size}\tInode: ${attr.ino}\tLinks: ${attr.nlink}\t${TYPE_NAME[fileType(attr.mode)]}` +
      (attr.replication > 0 ? `\tReplication: ${attr.replication}` : ''),
    `Access: (${perm}/${modeString(attr.mode)})\tUid: ${attr.uid}\tGid: ${attr.gid}`,
    `Access: ${new Date(attr.atimeMs).toISOString()}`,
    `Modify: ${new Date(attr.mtimeMs).toISOString()}`,
    `Change: ${new Date(attr.ctimeMs).toISOString()}`,
  ].join('\n');
}

/** stat --json: the attributes plus the file type. */
export function statJson(entry: ListedEntry): string {
  return JSON.stringify({ path: entry.name, ...entry.attr, type: fileType(entry.attr.mode), target: entry.target });
}

function lsTime(ms: number, now: number): string {
  const d = new Date(ms);
  const day = String(d.getDate()).padStart(2);
  const tail = Math.abs(now - ms) < RECENT_MS
    ? `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`
    : ` ${d.getFullYear()}`;
  return `${MONTHS[d.getMonth()]} ${day} ${tail}`;
}
