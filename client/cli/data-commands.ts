import * as fs from 'fs';
import { posix } from 'path';
import type { Argv, CommandModule } from 'yargs';
import { FsError } from '../../server/common/fs-error';
import { rawName } from '../../server/common/raw-names';
import { MAX_CHUNK_IO_BYTES } from '../../server/common/proto';
import { checkReplication, MAX_REPLICATION } from '../../server/master/request-checks';
import { ChunkClientPool } from '../chunk-client';
import { FileReader } from '../file-reader';
import { fileType } from '../file-type';
import { FileWriter } from '../file-writer';
import type { MasterClient } from '../master-client';
import { childPath, masterPath } from '../paths';
import { getattrOrNull } from '../tree-ops';
import { MasterArg, withMaster, withMasterOption } from './master-option';
import { progress } from './progress';

/** Runs `use` with a chunk-client pool that is closed afterwards. */
async function withChunkservers<R>(use: (peers: ChunkClientPool) => Promise<R>): Promise<R> {
  const peers = new ChunkClientPool();
  try {
    return await use(peers);
  } finally {
    peers.closeAll();
  }
}

const putCommand: CommandModule<object, MasterArg & { local: string; remote: string; replication?: number }> = {
  command: 'put <local> <remote>',
  describe: 'copy a local file into ChunkFS (into REMOTE when it is a directory)',
  builder: (y) => withMasterOption(y)
    .positional('local', { type: 'string', demandOption: true })
    .positional('remote', { type: 'string', demandOption: true })
    .option('replication', { type: 'number', requiresArg: true,
      describe: `replicas of each chunk, 1..${MAX_REPLICATION} [default: the cluster's]` }),
  handler: (args) => withMaster(args, (client) => withChunkservers(async (peers) => {
    if (args.replication !== undefined) checkReplication(args.replication);
    const local = localFile(args.local);
    const remote = await intoDirectory(client, masterPath(args.remote), posix.basename(args.local));
    if (await getattrOrNull(client, remote)) throw new FsError('EEXIST', `${remote} exists (put does not overwrite)`);
    await client.create(remote, local.mode & 0o777, true, { replication: args.replication });
    const writer = new FileWriter(client, peers);
    const bar = progress(`put ${remote}`, local.size);
    const fd = fs.openSync(args.local, 'r');
    try {
      const buf = Buffer.allocUnsafe(MAX_CHUNK_IO_BYTES);
      for (let offset = 0; ; ) {
        const n = fs.readSync(fd, buf, 0, buf.length, offset);
        if (n === 0) break;
        await writer.write(remote, offset, buf.subarray(0, n));
        offset += n;
        bar.add(n);
      }
    } finally {
      fs.closeSync(fd);
      await writer.close();
      bar.done();
    }
  })),
};

const getCommand: CommandModule<object, MasterArg & { remote: string; local: string }> = {
  command: 'get <remote> <local>',
  describe: 'copy a ChunkFS file to the local disk (into LOCAL when it is a directory)',
  builder: (y) => withMasterOption(y)
    .positional('remote', { type: 'string', demandOption: true })
    .positional('local', { type: 'string', demandOption: true }),
  handler: (args) => withMaster(args, (client) => withChunkservers(async (peers) => {
    const remote = masterPath(args.remote);
    const attr = await client.getattr(remote);
    if (fileType(attr.mode) === 'directory') throw new FsError('EISDIR', `${remote} is a directory`);
    let localName = args.local;
    if (fs.existsSync(localName) && fs.statSync(localName).isDirectory()) localName = posix.join(localName, posix.basename(remote));
    // The bytes the remote name stands for, which need not be UTF-8 (common/raw-names.ts).
    const local = rawName(localName);
    // Into a temporary name first: a failed copy never leaves a truncated file under LOCAL.
    const tmp = Buffer.concat([local, Buffer.from(`.chunkfs-${process.pid}.tmp`)]);
    const bar = progress(`get ${remote}`, attr.size);
    const fd = fs.openSync(tmp, 'w', attr.mode & 0o777);
    try {
      for await (const piece of new FileReader(client, peers).pieces(remote)) {
        fs.writeSync(fd, piece);
        bar.add(piece.length);
      }
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fs.renameSync(tmp, local);
    } catch (err) {
      fs.closeSync(fd);
      fs.rmSync(tmp, { force: true });
      throw err;
    } finally {
      bar.done();
    }
  })),
};

const catCommand: CommandModule<object, MasterArg & { remote: string }> = {
  command: 'cat <remote>',
  describe: 'write a ChunkFS file to standard output',
  builder: (y) => withMasterOption(y).positional('remote', { type: 'string', demandOption: true }),
  handler: (args) => withMaster(args, (client) => withChunkservers(async (peers) => {
    const remote = masterPath(args.remote);
    if (fileType((await client.getattr(remote)).mode) === 'directory') throw new FsError('EISDIR', `${remote} is a directory`);
    for await (const piece of new FileReader(client, peers).pieces(remote)) {
      if (!process.stdout.write(piece)) await new Promise((r) => process.stdout.once('drain', r));
    }
  })),
};

/** Registers put, get and cat. */
export function withDataCommands<T>(y: Argv<T>): Argv<T> {
  return y.command(putCommand).command(getCommand).command(catCommand);
}

function localFile(p: string): fs.Stats {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    throw new FsError('ENOENT', `no such local file: ${p}`);
  }
  if (st.isDirectory()) throw new FsError('EISDIR', `${p} is a directory (put copies one file)`);
  if (!st.isFile()) throw new FsError('EINVAL', `${p} is not a regular file`);
  return st;
}

async function intoDirectory(client: MasterClient, remote: string, name: string): Promise<string> {
  const attr = await getattrOrNull(client, remote);
  return attr && fileType(attr.mode) === 'directory' ? childPath(remote, name) : remote;
}
