import { posix } from 'path';
import type { Argv, CommandModule } from 'yargs';
import { FsError } from '../../server/common/fs-error';
import { rawName } from '../../server/common/raw-names';
import { fileType } from '../file-type';
import type { MasterClient } from '../master-client';
import { childPath, masterPath } from '../paths';
import { getattrOrNull, mkdirParents, removeTree } from '../tree-ops';
import { checkReplication, MAX_REPLICATION } from '../../server/master/request-checks';
import { ListedEntry, longListing, statJson, statText } from './format';
import { MasterArg, withMaster, withMasterOption } from './master-option';

/** Permissions of what the CLI creates: the usual result of umask 022. */
const DIR_MODE = 0o755;
const FILE_MODE = 0o644;
/** How often setrep -w asks the master whether replication is done (ms). */
const SETREP_POLL_MS = 500;

type Paths = MasterArg & { paths: string[] };

const lsCommand: CommandModule<object, MasterArg & { path: string; l: boolean }> = {
  command: 'ls [path]',
  describe: 'list a directory (or show one entry)',
  builder: (y) => withMasterOption(y)
    .positional('path', { type: 'string', default: '/' })
    .option('l', { type: 'boolean', default: false, describe: 'long listing' }),
  handler: (args) => withMaster(args, async (client) => {
    const path = masterPath(args.path);
    const attr = await client.getattr(path);
    const isDir = fileType(attr.mode) === 'directory';
    const entries: ListedEntry[] = isDir
      ? (await client.readdirAll(path)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      : [{ name: path, attr }];
    if (!args.l) return print(entries.map((e) => e.name));
    await addSymlinkTargets(client, entries, (e) => (isDir ? childPath(path, e.name) : path));
    print(longListing(entries));
  }),
};

const statCommand: CommandModule<object, Paths & { json: boolean }> = {
  command: 'stat <paths..>',
  describe: 'show attributes',
  builder: (y) => withMasterOption(y)
    .positional('paths', { type: 'string', array: true, demandOption: true })
    .option('json', { type: 'boolean', default: false, describe: 'one JSON object per path' }),
  handler: (args) => withMaster(args, async (client) => {
    for (const path of args.paths.map(masterPath)) {
      const entry: ListedEntry = { name: path, attr: await client.getattr(path) };
      await addSymlinkTargets(client, [entry], () => path);
      if (args.json) process.stdout.write(`${statJson(entry)}\n`); // JSON stays UTF-8
      else print([statText(entry)]);
    }
  }),
};

const mkdirCommand: CommandModule<object, Paths & { p: boolean }> = {
  command: 'mkdir <paths..>',
  describe: 'create directories',
  builder: (y) => withMasterOption(y)
    .positional('paths', { type: 'string', array: true, demandOption: true })
    .option('p', { type: 'boolean', default: false, describe: 'make parents; no error if it exists' }),
  handler: (args) => withMaster(args, async (client) => {
    for (const path of args.paths.map(masterPath)) {
      if (args.p) await mkdirParents(client, path, DIR_MODE);
      else await client.mkdir(path, DIR_MODE);
    }
  }),
};

const rmCommand: CommandModule<object, Paths & { r: boolean }> = {
  command: 'rm <paths..>',
  describe: 'remove files (and directories with -r)',
  builder: (y) => withMasterOption(y)
    .positional('paths', { type: 'string', array: true, demandOption: true })
    .option('r', { type: 'boolean', default: false, describe: 'remove directories and their contents' }),
  handler: (args) => withMaster(args, async (client) => {
    for (const path of args.paths.map(masterPath)) {
      if (path === '/') throw new FsError('EBUSY', "refusing to remove '/'");
      const attr = await client.getattr(path);
      if (fileType(attr.mode) === 'directory' && !args.r) {
        throw new FsError('EISDIR', `cannot remove '${path}': is a directory (use -r)`);
      }
      await removeTree(client, path, attr);
    }
  }),
};

const mvCommand: CommandModule<object, MasterArg & { src: string; dst: string }> = {
  command: 'mv <src> <dst>',
  describe: 'rename; into DST when it is a directory',
  builder: (y) => withMasterOption(y)
    .positional('src', { type: 'string', demandOption: true })
    .positional('dst', { type: 'string', demandOption: true }),
  handler: (args) => withMaster(args, async (client) => {
    const src = masterPath(args.src);
    await client.rename(src, await destination(client, src, masterPath(args.dst)));
  }),
};

const lnCommand: CommandModule<object, MasterArg & { target: string; linkname: string; s: boolean }> = {
  command: 'ln <target> <linkname>',
  describe: 'make a hard link (or a symbolic one with -s)',
  builder: (y) => withMasterOption(y)
    .positional('target', { type: 'string', demandOption: true })
    .positional('linkname', { type: 'string', demandOption: true })
    .option('s', { type: 'boolean', default: false, describe: 'symbolic link (TARGET stored as given)' }),
  handler: (args) => withMaster(args, async (client) => {
    const link = await destination(client, args.target, masterPath(args.linkname));
    if (args.s) await client.symlink(args.target, link);
    else await client.link(masterPath(args.target), link);
  }),
};

const chmodCommand: CommandModule<object, Paths & { mode: string }> = {
  command: 'chmod <mode> <paths..>',
  describe: 'change permission bits (octal MODE)',
  builder: (y) => withMasterOption(y)
    .positional('mode', { type: 'string', demandOption: true })
    .positional('paths', { type: 'string', array: true, demandOption: true }),
  handler: (args) => withMaster(args, async (client) => {
    if (!/^[0-7]{1,4}$/.test(args.mode)) throw new FsError('EINVAL', `invalid octal mode '${args.mode}'`);
    const mode = parseInt(args.mode, 8);
    for (const path of args.paths.map(masterPath)) await client.setattr(path, { mode });
  }),
};

const touchCommand: CommandModule<object, Paths & { d?: string }> = {
  command: 'touch <paths..>',
  describe: 'create empty files, or set access and modification times',
  builder: (y) => withMasterOption(y)
    .positional('paths', { type: 'string', array: true, demandOption: true })
    .option('d', { type: 'string', describe: 'use DATE (anything Date.parse accepts) instead of now' }),
  handler: (args) => withMaster(args, async (client) => {
    const time = args.d === undefined ? Date.now() : Date.parse(args.d);
    if (Number.isNaN(time)) throw new FsError('EINVAL', `invalid date '${args.d}'`);
    for (const path of args.paths.map(masterPath)) {
      const exists = (await getattrOrNull(client, path)) !== null;
      const created = !exists && (await client.create(path, FILE_MODE, false)).created;
      if (!created || args.d !== undefined) await client.setattr(path, { atimeMs: time, mtimeMs: time });
    }
  }),
};

const setrepCommand: CommandModule<object, Paths & { replication: number; w: boolean }> = {
  command: 'setrep <replication> <paths..>',
  describe: 'set the replication factor of files (the master adds or trims replicas), like hdfs dfs -setrep',
  builder: (y) => withMasterOption(y)
    .positional('replication', { type: 'number', demandOption: true, describe: `replicas of each chunk, 1..${MAX_REPLICATION}` })
    .positional('paths', { type: 'string', array: true, demandOption: true })
    .option('w', { type: 'boolean', default: false, describe: 'wait until every chunk has that many replicas (may take long)' }),
  handler: (args) => withMaster(args, async (client) => {
    checkReplication(args.replication);
    const paths = args.paths.map(masterPath);
    for (const path of paths) await client.setReplication(path, args.replication);
    if (args.w) for (const path of paths) await untilReplicated(client, path);
  }),
};

/** Registers the file-shell commands. */
export function withFileCommands<T>(y: Argv<T>): Argv<T> {
  return y.command(lsCommand).command(statCommand).command(mkdirCommand).command(rmCommand)
    .command(mvCommand).command(lnCommand).command(chmodCommand).command(touchCommand).command(setrepCommand);
}

/** Polls fsck until no chunk of the file is under- or over-replicated (as hdfs dfs -setrep -w). */
async function untilReplicated(client: MasterClient, path: string): Promise<void> {
  for (;;) {
    const c = (await client.fsck(path)).chunks!;
    if (c.underReplicated + c.overReplicated === 0) return;
    await new Promise((resolve) => setTimeout(resolve, SETREP_POLL_MS));
  }
}

/** Like mv(1)/ln(1): a destination that is an existing directory means "inside it". */
async function destination(client: MasterClient, src: string, dst: string): Promise<string> {
  const attr = await getattrOrNull(client, dst);
  if (!attr || fileType(attr.mode) !== 'directory') return dst;
  return childPath(dst, posix.basename(src));
}

async function addSymlinkTargets(
  client: MasterClient,
  entries: ListedEntry[],
  pathOf: (e: ListedEntry) => string,
): Promise<void> {
  await Promise.all(entries
    .filter((e) => fileType(e.attr.mode) === 'symlink')
    .map(async (e) => { e.target = await client.readlink(pathOf(e)); }));
}

/** Names as the bytes they stand for, as ls(1) prints them (common/raw-names.ts). */
function print(lines: string[]): void {
  if (lines.length > 0) process.stdout.write(rawName(lines.join('\n') + '\n'));
}
