import { strict as assert } from 'assert';
import { SlowDiskGuard } from '../server/common/slow-disk';

/** When a small disk call may block the event loop: not after a slow one, until one is quick. */
describe('slow disk guard', () => {
  const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

  it('turns blocking calls off after a slow call, failed or not, and on again after a quick one', async () => {
    const disk = new SlowDiskGuard();
    assert.equal(disk.quick, true);
    assert.equal(await disk.timed(async () => 'ok'), 'ok');
    assert.equal(disk.quick, true);
    await disk.timed(() => pause(30)); // a disk busy with other work
    assert.equal(disk.quick, false);
    await disk.timed(async () => undefined);
    assert.equal(disk.quick, true, 'a quick call through the pool turns it back on');
    await assert.rejects(disk.timed(async () => {
      await pause(30);
      throw new Error('EIO');
    }), /EIO/);
    assert.equal(disk.quick, false, 'a slow failure counts too');
  });
});
