import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MasterClient } from '../client/master-client';
import { S_IFDIR, S_IFMT } from '../server/master/inode';
import { runCli, ServerProcess, startMaster } from './helpers/server-process';

/**
 * Polling for the answer to a lone namespace change (client/answer-poll.ts), against a real
 * master process: when it polls, that it stops once answered, and that a master that does not
 * answer is polled for no longer than the bound.
 */
describe('polling for the answer to a lone namespace change', function () {
  this.timeout(60_000);
  let root: string;
  let master: ServerProcess;
  const clients: MasterClient[] = [];

  function client(answerPollMs: number): MasterClient {
    const c = new MasterClient(master.address, { answerPollMs });
    clients.push(c);
    return c;
  }

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'chunkfs-answer-poll-'));
    master = await startMaster([path.join(root, 'meta')]);
  });
  after(async () => {
    for (const c of clients) c.close();
    master.kill('SIGCONT');
    await master.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('polls while a lone change waits, and stops once it is answered', async () => {
    const c = client(5000); // far longer than an answer takes
    await c.getattr('/'); // the session connected; reads never poll
    assert.equal(c.answerPollTurns, 0, 'a read polled');
    await c.mkdir('/lone', 0o755);
    const turns = c.answerPollTurns;
    assert.ok(turns > 0, 'a lone mkdir did not poll');
    await sleep(100);
    assert.equal(c.answerPollTurns, turns, 'still polling after the answer');
    await c.rmdir('/lone');
    assert.ok(c.answerPollTurns > turns, 'a lone rmdir did not poll');
  });

  it('does not poll for a create, for changes made together, nor when told 0', async () => {
    const creator = client(50);
    await creator.getattr('/');
    await creator.create('/file', 0o644, true);
    assert.equal(creator.answerPollTurns, 0, 'a create polled');
    const together = client(50);
    await together.getattr('/');
    await Promise.all(['/t1', '/t2', '/t3'].map((p) => together.mkdir(p, 0o755)));
    assert.equal(together.answerPollTurns, 0, 'changes in one batch polled');
    const never = client(0);
    await never.mkdir('/never', 0o755);
    await never.rmdir('/never');
    assert.equal(never.answerPollTurns, 0, 'polled with answerPollMs 0');
  });

  it('polls no longer than its bound when the master does not answer, and the change still completes', async () => {
    const c = client(30);
    await c.getattr('/');
    master.kill('SIGSTOP');
    const made = c.mkdir('/stopped', 0o755);
    await sleep(300);
    const turns = c.answerPollTurns;
    assert.ok(turns > 0, 'did not poll');
    await sleep(200);
    assert.equal(c.answerPollTurns, turns, 'polled past its bound');
    master.kill('SIGCONT');
    await made;
    assert.equal((await c.getattr('/stopped')).mode & S_IFMT, S_IFDIR);
  });

  it('the mount refuses a bad --answer-poll before touching the mount point', async () => {
    for (const bad of ['-1', '101', 'soon']) {
      const r = await runCli(['mount', path.join(root, 'nowhere'), '--masters', master.address, '--answer-poll', bad]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /--answer-poll must be 0\.\.100 ms/);
    }
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
