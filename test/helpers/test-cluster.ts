import { strict as assert } from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChunkClientPool } from '../../client/chunk-client';
import { FileReader } from '../../client/file-reader';
import { ClusterReport, MasterClient } from '../../client/master-client';
import { chunkFilePath } from '../../server/chunkserver/chunk-file';
import { ServerProcess, startChunkserver, startMaster } from './server-process';

/**
 * A real cluster for a test file: a master and chunkservers as processes on loopback, in a
 * fresh temporary directory, with a client and a pool of chunk clients. stop() ends every
 * process (SIGKILL) and removes the directory, also after a failure.
 */
export class TestCluster {
  master!: ServerProcess;
  client!: MasterClient;
  readonly chunkservers: ServerProcess[] = [];
  readonly peers = new ChunkClientPool();
  private readonly dataDirs = new Map<ServerProcess, string[]>();
  /** Data directories that are tmpfs mounts (startChunkserverOnTmpfs). */
  private readonly tmpfs: string[] = [];

  private constructor(
    readonly root: string,
    private readonly masterArgs: string[],
    private readonly chunkserverArgs: string[],
  ) {}

  /**
   * A master (with `masterArgs`, and `masterEnv` added to its environment: CHUNKFS_LOG=debug
   * logs every session call) and `chunkservers` chunkservers (with `chunkserverArgs`), all
   * registered.
   */
  static async start(name: string, chunkservers: number, masterArgs: string[] = [], chunkserverArgs: string[] = [], masterEnv: NodeJS.ProcessEnv = {}): Promise<TestCluster> {
    const c = new TestCluster(fs.mkdtempSync(path.join(os.tmpdir(), `chunkfs-${name}-`)), masterArgs, chunkserverArgs);
    try {
      c.master = await startMaster([c.metaDir], masterArgs, undefined, masterEnv);
      c.client = new MasterClient(c.master.address);
      for (let n = 0; n < chunkservers; n++) await c.startChunkserver();
      await c.until((r) => r.chunkservers.filter((x) => x.alive).length === chunkservers, `${chunkservers} chunkservers alive`);
      return c;
    } catch (err) {
      await c.stop(); // nothing started may outlive a failed start
      throw err;
    }
  }

  get metaDir(): string {
    return path.join(this.root, 'meta');
  }

  /**
   * Another chunkserver, by default with one data directory cs<N>; heartbeats every 0.2 s.
   * `wrapper`: see startChunkserver.
   */
  async startChunkserver(dirs = [path.join(this.root, `cs${this.chunkservers.length}`)], wrapper: string[] = []): Promise<ServerProcess> {
    const cs = await startChunkserver(dirs, [this.master.address], ['--heartbeat-interval', '0.2', ...this.chunkserverArgs], wrapper);
    this.chunkservers.push(cs);
    this.dataDirs.set(cs, dirs);
    return cs;
  }

  /**
   * Starts chunkserver `i` again on its data directories (after it was killed), on a new port or,
   * with `sameAddress`, on the one it had (as a server with a configured port comes back).
   */
  async restartChunkserver(i: number, { sameAddress = false } = {}): Promise<ServerProcess> {
    const dirs = this.dataDirsOf(this.chunkservers[i]);
    const listen = sameAddress ? this.chunkservers[i].address : '127.0.0.1:0';
    const cs = await startChunkserver(dirs, [this.master.address], ['--heartbeat-interval', '0.2', ...this.chunkserverArgs], [], listen);
    this.chunkservers[i] = cs;
    this.dataDirs.set(cs, dirs);
    return cs;
  }

  /**
   * Another chunkserver whose one data directory is a fresh tmpfs of `size` (as mount(8) takes
   * it: '24m'), for a known amount of space whatever the host's disk holds. Needs root;
   * unmounted by stop().
   */
  async startChunkserverOnTmpfs(size: string): Promise<ServerProcess> {
    assert.equal(process.getuid?.(), 0, 'a chunkserver on tmpfs needs root to mount it');
    const dir = path.join(this.root, `cs${this.chunkservers.length}`);
    fs.mkdirSync(dir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
    this.tmpfs.push(dir);
    return this.startChunkserver([dir]);
  }

  dataDirsOf(cs: ServerProcess): string[] {
    return this.dataDirs.get(cs) ?? [];
  }

  /** The files on disk holding a replica of chunk `handle`, with the chunkserver of each. */
  replicaFiles(handle: number): Array<{ cs: ServerProcess; file: string }> {
    const found: Array<{ cs: ServerProcess; file: string }> = [];
    for (const cs of this.chunkservers) {
      for (const dir of this.dataDirsOf(cs)) {
        const file = chunkFilePath(dir, handle);
        if (fs.existsSync(file)) found.push({ cs, file });
      }
    }
    return found;
  }

  /**
   * Kills the master (SIGKILL), runs `whileDown`, and starts it again on the same address and
   * directory (chunkservers keep heartbeating to it).
   */
  async restartMaster(whileDown: () => Promise<void> = async () => undefined): Promise<void> {
    await kill(this.master);
    await whileDown();
    this.client.close();
    this.master = await startMaster([this.metaDir], this.masterArgs, this.master.address);
    this.client = new MasterClient(this.master.address);
  }

  /** Polls the master's report until `ok` holds; fails the test after `ms`. */
  async until(ok: (r: ClusterReport) => boolean, what: string, ms = 30_000): Promise<ClusterReport> {
    const deadline = Date.now() + ms;
    for (;;) {
      const r = await this.client.report();
      if (ok(r)) return r;
      if (Date.now() > deadline) assert.fail(`${what} did not happen: ${JSON.stringify(r)}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  /** A whole file through the client library's reader. */
  async readAll(p: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const piece of new FileReader(this.client, this.peers).pieces(p)) parts.push(piece);
    return Buffer.concat(parts);
  }

  async stop(): Promise<void> {
    this.client?.close();
    this.peers.closeAll();
    for (const p of [this.master, ...this.chunkservers]) if (p) await kill(p);
    for (const dir of this.tmpfs) execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

export async function kill(p: ServerProcess): Promise<void> {
  p.kill('SIGKILL');
  await p.stopped;
}
