import { spawn } from 'child_process';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { parseArgs } from 'util';
import { ChunkClientPool } from '../client/chunk-client';
import { FileWriter } from '../client/file-writer';
import { MasterClient } from '../client/master-client';
import { PACKAGE_ROOT } from '../server/common/package-root';
import { serverEnv } from '../server/common/server-runtime';
import { BenchServer, makeTempDir, markdownTable, median, positive, removeDir, round, spawnChunkserver, spawnMaster } from './bench-util';

/**
 * Where the time of a small file goes: the steps of writing one 4 KiB file through the client
 * library (each timed alone), then the same file-system operations through a real mount, so
 * that mount minus library is the cost of FUSE and the mount's own logic. Medians in ms.
 *
 *   node dist/bench/small-file-phases.js [--files 300] [--chunkservers 3]
 */
const { values } = parseArgs({ options: { files: { type: 'string', default: '300' }, chunkservers: { type: 'string', default: '3' } } });
const FILES = positive('--files', values.files!);
const CHUNKSERVERS = positive('--chunkservers', values.chunkservers!);

type Samples = Map<string, number[]>;

async function timed<T>(samples: Samples, step: string, work: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const result = await work();
  const list = samples.get(step) ?? [];
  list.push(performance.now() - t0);
  samples.set(step, list);
  return result;
}

/** The library steps of one small file, in the order the mount runs them. */
async function libraryPhases(master: MasterClient, peers: ChunkClientPool, samples: Samples): Promise<void> {
  const data = Buffer.alloc(4096, 7);
  await master.mkdir('/lib', 0o755);
  for (let i = 0; i < FILES; i++) {
    const p = `/lib/f${i}`;
    await timed(samples, 'getattr (a lookup)', () => master.getattr('/lib'));
    await timed(samples, 'create (logged)', () => master.create(p, 0o644, true));
    const writer = new FileWriter(master, peers);
    // allocate + lease in one call, first write creating 3 durable replicas, confirm + size logged
    await timed(samples, 'FileWriter.write 4 KiB (allocate, write on 3 replicas, confirm)', () => writer.write(p, 0, data));
    await timed(samples, 'FileWriter.close (lease released)', () => writer.close());
    await timed(samples, 'mkdir (logged)', () => master.mkdir(`/lib/d${i}`, 0o755));
  }
}

/** The same work as file-system calls on a mount served by its own process. */
async function mountPhases(mnt: string, samples: Samples): Promise<void> {
  const data = Buffer.alloc(4096, 7);
  await fsp.mkdir(path.join(mnt, 'm'));
  for (let i = 0; i < FILES; i++) {
    const p = path.join(mnt, 'm', `f${i}`);
    await timed(samples, 'mount: create + write 4 KiB + close', () => fsp.writeFile(p, data, { flag: 'wx' }));
    await timed(samples, 'mount: mkdir', () => fsp.mkdir(path.join(mnt, 'm', `d${i}`)));
  }
  for (let i = 0; i < FILES; i++) {
    await timed(samples, 'mount: stat', () => fsp.stat(path.join(mnt, 'm', `f${i}`)));
    await timed(samples, 'mount: open + read + close', () => fsp.readFile(path.join(mnt, 'm', `f${i}`)));
  }
  for (let i = 0; i < FILES; i++) await timed(samples, 'mount: unlink', () => fsp.unlink(path.join(mnt, 'm', `f${i}`)));
}

function startMount(mnt: string, master: string): Promise<() => Promise<void>> {
  const child = spawn(process.execPath, [path.join(PACKAGE_ROOT, 'dist/bin/chunkfs.js'), 'mount', mnt, '--masters', master],
    { stdio: ['ignore', 'pipe', 'inherit'], env: serverEnv(process.env) });
  const exited = new Promise((r) => child.once('exit', r));
  return new Promise((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      if (s.includes('mounted')) resolve(async () => { child.kill('SIGTERM'); await exited; });
    });
    void exited.then(() => reject(new Error('chunkfs mount exited')));
  });
}

async function main(): Promise<void> {
  const root = makeTempDir('chunkfs-small-file-');
  const servers: BenchServer[] = [];
  let unmount: (() => Promise<void>) | null = null;
  try {
    const master = await spawnMaster({ metaDir: path.join(root, 'meta') });
    servers.push(master);
    for (let i = 0; i < CHUNKSERVERS; i++) servers.push(await spawnChunkserver(path.join(root, `cs${i}`), master.address));
    const client = new MasterClient(master.address);
    const peers = new ChunkClientPool();
    for (let t = 0; (await client.report()).chunkservers.length < CHUNKSERVERS; t++) {
      if (t > 100) throw new Error('chunkservers did not register');
      await new Promise((r) => setTimeout(r, 100));
    }
    const samples: Samples = new Map();
    await libraryPhases(client, peers, samples);
    const mnt = path.join(root, 'mnt');
    await fsp.mkdir(mnt);
    unmount = await startMount(mnt, master.address);
    await mountPhases(mnt, samples);
    const rows = [...samples].map(([step, xs]) => [step, round(median(xs), 2)]);
    console.log(markdownTable(['step', 'median ms'], rows));
    client.close();
    peers.closeAll();
  } finally {
    await unmount?.();
    for (const s of servers.reverse()) await s.stop();
    removeDir(root);
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
