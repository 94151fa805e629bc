import { strict as assert } from 'assert';
import { spawn } from 'child_process';
import { once } from 'events';
import { kill, TestCluster } from './helpers/test-cluster';
import { TestMount } from './helpers/test-mount';

/**
 * A writer in a process of its own: it writes 1 MiB to the file (one full buffer of the mount's,
 * sent at once in the background), says "written", and closes it when told (a line on stdin),
 * saying how that went. (Not this process: every program this one starts would close an
 * inherited copy of the descriptor at exec, and that close flushes.)
 */
const WRITER = `
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b'\\1' * (1 << 20))
print('written', flush=True)
sys.stdin.readline()
try:
    os.close(fd)
    print('closed', flush=True)
except OSError as e:
    print('close failed', os.strerror(e.errno), flush=True)
`;

/** Writes that fail after write(2) returned (buffered, sent in the background) are never acknowledged. */
describe('mount: a failed background write', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let mount: TestMount;

  before(async () => {
    // The master counts killed chunkservers alive for a minute and keeps placing chunks on them.
    cluster = await TestCluster.start('mount-write-errors', 3, ['--dead-timeout', '60']);
    mount = await TestMount.start(cluster, 'mnt', ['--write-buffer', '1']);
  });
  after(async () => {
    await mount?.stop();
    await cluster?.stop();
  });

  it("is reported by the writer's close, also after other processes' reads and closes met it first", async () => {
    for (const cs of cluster.chunkservers) await kill(cs);
    const writer = spawn('python3', ['-c', WRITER, mount.at('f')], { stdio: ['pipe', 'pipe', 'inherit'] });
    let said = '';
    writer.stdout.setEncoding('utf8').on('data', (s: string) => (said += s));
    const exited = once(writer, 'exit');
    try {
      while (!said.includes('written')) await Promise.race([once(writer.stdout, 'data'), exited.then(() => assert.fail(`the writer exited: ${said}`))]);
      // Handles of other processes flush the file (a read makes this mount's writes visible to
      // it; a close of a handle opened for writing flushes): they wait for the failing writes.
      await mount.sh(`python3 -c 'import os; os.close(os.open("f", os.O_RDWR))'`);
      await mount.sh('cat f > /dev/null');
      await mount.sh(`python3 -c 'import os; os.close(os.open("f", os.O_RDWR))'`);
    } finally {
      writer.stdin.end('close\n');
      await exited;
    }
    // The writer learns of it all the same: close(2) must not acknowledge what never landed.
    assert.match(said, /close failed (Input\/output error|No space left on device)/);
  });
});
