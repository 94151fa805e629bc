import { strict as assert } from 'assert';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { FileWriter } from '../client/file-writer';
import { readHeader, withFile } from '../server/chunkserver/chunk-file';
import { kill, TestCluster } from './helpers/test-cluster';

const MiB = 1 << 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A chunkserver killed (SIGKILL) while small files are being created one after another, so that
 * it dies with spares being taken and made, and started again on the same data directory: its
 * start-up scan keeps only chunk files with a valid header, every file reads back exactly, and
 * the cluster heals to full replication.
 */
describe('a chunkserver killed while small files are created', function () {
  this.timeout(120_000);
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start('cs-crash', 3, ['--chunk-size', String(MiB), '--dead-timeout', '1.5']);
  });
  after(async () => cluster?.stop());

  it('restarts on its data with every chunk intact, and the cluster heals', async () => {
    const files = new Map<string, Buffer>();
    const writer = new FileWriter(cluster.client, cluster.peers);
    let stop = false;
    const creating = (async () => {
      for (let i = 0; !stop; i++) {
        const name = `/f${i}`;
        const data = randomBytes(1 + ((i * 7919) % 40_000)); // small files, some past a spare's room
        await cluster.client.create(name, 0o644, true);
        await writer.write(name, 0, data);
        files.set(name, data);
      }
    })();
    await sleep(600);
    await kill(cluster.chunkservers[0]);
    await sleep(800); // creates go on around the dead server
    stop = true;
    await creating;
    await writer.close();
    assert.ok(files.size > 10, `${files.size} files created`);

    await cluster.restartChunkserver(0);
    await cluster.until(
      (r) => r.chunkservers.filter((c) => c.alive).length === 3 && r.chunks!.underReplicated + r.chunks!.missing + r.chunks!.corrupt === 0,
      'three chunkservers alive and every chunk at three good replicas',
      60_000,
    );
    // Every file whole, and every replica the restarted server holds served by it exactly.
    const restarted = cluster.chunkservers[0].address;
    let servedThere = 0;
    for (const [name, data] of files) {
      assert.ok((await cluster.readAll(name)).equals(data), name);
      for (const c of (await cluster.client.chunkLocations(name, 0, 10)).chunks) {
        if (!c.replicas.includes(restarted)) continue;
        const expected = data.subarray(c.index * MiB, (c.index + 1) * MiB);
        assert.ok((await cluster.peers.get(restarted).read(c.handle, c.version, 0, MiB)).equals(expected), `${name} chunk ${c.index} on the restarted server`);
        servedThere++;
      }
    }
    assert.ok(servedThere > 0, 'the restarted server serves replicas');

    const dir = cluster.dataDirsOf(cluster.chunkservers[0])[0];
    const chunkFiles = fs.readdirSync(path.join(dir, 'chunks'), { recursive: true }).map(String).filter((f) => f.endsWith('.chunk'));
    assert.ok(chunkFiles.length > 0, 'the restarted server holds replicas');
    for (const f of chunkFiles) assert.ok(await withFile(path.join(dir, 'chunks', f), 'r', readHeader), `${f} has a valid header`);
  });
});
