import { FsError } from '../server/common/fs-error';
import type { Attr } from '../server/master/inode';
import type { DirEntry } from '../server/master/namespace';
import { fileType } from './file-type';
import type { MasterClient } from './master-client';
import { childPath } from './paths';

/**
 * mkdir -p: creates `path` and its missing parents; existing directories are fine. Returns the
 * directories it created, outermost first.
 */
export async function mkdirParents(client: MasterClient, path: string, mode: number): Promise<string[]> {
  const names = path.split('/').filter((name) => name !== '');
  const created: string[] = [];
  let dir = '/';
  for (const name of names) {
    dir = childPath(dir, name);
    try {
      await client.mkdir(dir, mode);
      created.push(dir);
    } catch (err) {
      if (!(err instanceof FsError && err.code === 'EEXIST')) throw err;
      if (fileType((await client.getattr(dir)).mode) !== 'directory') {
        throw new FsError('ENOTDIR', `not a directory: ${dir}`);
      }
    }
  }
  return created;
}

/**
 * Unlinks issued at once by removeTree. The master makes each mutation durable before it
 * answers, and concurrent ones share an fsync (group commit), so batches are much faster than
 * one unlink at a time.
 */
const UNLINK_BATCH = 32;

/** rm -r: removes `path` and everything below it, depth first. */
export async function removeTree(client: MasterClient, path: string, attr?: Attr): Promise<void> {
  const { mode } = attr ?? (await client.getattr(path));
  if (fileType(mode) !== 'directory') {
    await client.unlink(path);
    return;
  }
  const entries = await client.readdirAll(path);
  const isDir = (e: DirEntry): boolean => fileType(e.attr.mode) === 'directory';
  const files = entries.filter((e) => !isDir(e));
  for (let i = 0; i < files.length; i += UNLINK_BATCH) {
    await Promise.all(files.slice(i, i + UNLINK_BATCH).map((e) => client.unlink(childPath(path, e.name))));
  }
  for (const dir of entries.filter(isDir)) await removeTree(client, childPath(path, dir.name), dir.attr);
  await client.rmdir(path);
}

/** getattr, or null when nothing is at `path`. */
export async function getattrOrNull(client: MasterClient, path: string): Promise<Attr | null> {
  try {
    return await client.getattr(path);
  } catch (err) {
    if (err instanceof FsError && err.code === 'ENOENT') return null;
    throw err;
  }
}
