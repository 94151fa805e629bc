import * as fs from 'fs';
import * as path from 'path';

/**
 * The directory holding ChunkFS's package.json. Compiled code runs from dist/, sources from the
 * repository, so files shipped beside the code (proto/, bin/) are found relative to this
 * rather than to __dirname.
 */
export const PACKAGE_ROOT = findPackageRoot(__dirname);

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${start}`);
  }
}
