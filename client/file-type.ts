import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../server/master/inode';

export type FileType = 'directory' | 'file' | 'symlink' | 'other';

/** The kind of inode an st_mode describes. */
export function fileType(mode: number): FileType {
  switch (mode & S_IFMT) {
    case S_IFDIR:
      return 'directory';
    case S_IFREG:
      return 'file';
    case S_IFLNK:
      return 'symlink';
    default:
      return 'other';
  }
}
