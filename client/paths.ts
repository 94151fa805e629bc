import * as path from 'path';

/**
 * A path as the master wants it (absolute, no '.', '..', '//' or trailing '/') from one a user
 * typed; relative paths are taken relative to '/', since the CLI has no working directory
 * inside ChunkFS.
 */
export function masterPath(userPath: string): string {
  return path.posix.resolve('/', userPath);
}

/** `dir`/`name` for a master path `dir`. */
export function childPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}
