import { strict as assert } from 'assert';
import { createHash } from 'crypto';
import { FileWriter } from '../client/file-writer';
import { modelWrite } from './helpers/chunk-model';
import { prng } from './helpers/prng';
import { TestCluster } from './helpers/test-cluster';

const KiB = 1024;
const CHUNK = 256 * KiB;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Random overwrites, appends, holes and truncates (shrink and grow) through the client library
 * on a real cluster with small chunks, each checked against a local model of the file; at the
 * end every replica of every chunk is byte-identical.
 */
describe('random I/O against a model file', function () {
  this.timeout(180_000);
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start('rio', 3, ['--chunk-size', String(CHUNK)]);
  });
  after(async () => cluster?.stop());

  for (const seed of [1, 2]) {
    it(`matches the model after every step of a random sequence (seed ${seed})`, async () => {
      const rand = prng(seed);
      const file = `/model${seed}`;
      await cluster.client.create(file, 0o644, true);
      const writer = new FileWriter(cluster.client, cluster.peers);
      let model: Buffer = Buffer.alloc(0);
      const steps: string[] = [];
      for (let step = 0; step < 40; step++) {
        const r = rand();
        const len = 1 + Math.floor(rand() * 1.5 * CHUNK);
        const data = Buffer.from(Array.from({ length: len }, () => Math.floor(rand() * 256)));
        if (r < 0.35) {
          const offset = Math.floor(rand() * (model.length + 1)); // overwrite, possibly extending
          await writer.write(file, offset, data);
          model = modelWrite(model, offset, data);
          steps.push(`write ${offset}+${len}`);
        } else if (r < 0.55) {
          await writer.write(file, model.length, data);
          model = modelWrite(model, model.length, data);
          steps.push(`append ${len}`);
        } else if (r < 0.7) {
          const offset = model.length + Math.floor(rand() * 2 * CHUNK); // leaves a hole
          await writer.write(file, offset, data);
          model = modelWrite(model, offset, data);
          steps.push(`hole+write ${offset}+${len}`);
        } else {
          const size = rand() < 0.6 ? Math.floor(rand() * model.length) : model.length + Math.floor(rand() * CHUNK);
          await writer.truncate(file, size);
          const next = Buffer.alloc(size);
          model.copy(next, 0, 0, Math.min(size, model.length));
          model = next;
          steps.push(`truncate ${size}`);
        }
        assert.equal((await cluster.client.getattr(file)).size, model.length, `size after ${steps.join(', ')}`);
        assert.equal(sha(await cluster.readAll(file)), sha(model), `contents after ${steps.join(', ')}`);
      }
      await writer.close();
      const { chunks } = await cluster.client.chunkLocations(file, 0, 1000);
      assert.ok(chunks.length <= Math.ceil(model.length / CHUNK), 'no chunk is kept past the end');
      for (const c of chunks.filter((x) => x.handle !== 0)) {
        const copies = await Promise.all(c.replicas.map((a) => cluster.peers.get(a).read(c.handle, c.version, 0, CHUNK)));
        assert.equal(copies.length, 3);
        for (const copy of copies) assert.ok(copy.equals(copies[0]), `replicas of chunk ${c.index} identical`);
      }
    });
  }
});
