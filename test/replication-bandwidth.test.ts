import { strict as assert } from 'assert';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChunkClientPool } from '../client/chunk-client';
import { runCli, ServerProcess, startChunkserver } from './helpers/server-process';

const MiB = 1 << 20;
/** No master listens here: these chunkservers only serve the test's chunk calls. */
const NO_MASTER = ['127.0.0.1:1'];
const QUIET = ['--heartbeat-interval', '3600'];

/**
 * `chunkfs chunkserver --replication-bandwidth MB/s` on real processes: a copy pulled in by a
 * capped chunkserver takes at least (bytes - one second's burst) / cap. Only that lower bound
 * is asserted; it cannot fail by the machine being slow.
 */
describe('re-replication bandwidth cap', function () {
  this.timeout(60_000);
  let root: string;
  const servers: ServerProcess[] = [];
  const peers = new ChunkClientPool({ copyDeadlineMs: 50_000 });

  before(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), 'chunkfs-bandwidth-'))));
  after(async () => {
    peers.closeAll();
    for (const s of servers) await s.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });
  const start = async (name: string, args: string[]): Promise<ServerProcess> => {
    const s = await startChunkserver([path.join(root, name)], NO_MASTER, [...QUIET, ...args]);
    servers.push(s);
    return s;
  };

  it('holds copies to the cap (a lower bound on their time), and 0 means unlimited', async () => {
    const source = await start('source', []);
    const capped = await start('capped', ['--replication-bandwidth', '1']);
    const unlimited = await start('unlimited', ['--replication-bandwidth', '0']);
    const data = randomBytes(4 * MiB);
    const handle = 11;
    await peers.get(source.address).create(handle, 1);
    await peers.get(source.address).write(handle, 1, 0, data, []);

    const t0 = performance.now();
    assert.equal(await peers.get(capped.address).copy(handle, 1, source.address), data.length);
    const seconds = (performance.now() - t0) / 1000;
    // 1 MB/s with a burst of one second's worth (1e6 bytes): at least 3.19 s.
    const floor = (data.length - 1e6) / 1e6;
    assert.ok(seconds >= floor * 0.99, `4 MiB copied in ${seconds.toFixed(2)} s under a 1 MB/s cap (at least ${floor.toFixed(2)} s expected)`);
    assert.ok((await peers.get(capped.address).read(handle, 1, 0, 4 * MiB)).equals(data));

    assert.equal(await peers.get(unlimited.address).copy(handle, 1, source.address), data.length);
    assert.ok((await peers.get(unlimited.address).read(handle, 1, 0, 4 * MiB)).equals(data));
  });

  it('refuses a negative or non-numeric cap as a usage error', async () => {
    for (const bad of ['-1', 'fast']) {
      const r = await runCli(['chunkserver', '--data-dir', path.join(root, 'never'), '--listen', '127.0.0.1:0',
        '--masters', NO_MASTER[0], '--replication-bandwidth', bad]);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /--replication-bandwidth must be a number of MB\/s, 0 or more/);
    }
    assert.equal(fs.existsSync(path.join(root, 'never')), false);
  });
});
