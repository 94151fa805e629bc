import { strict as assert } from 'assert';
import { spawn } from 'child_process';
import { once } from 'events';
import { kill, TestCluster } from './helpers/test-cluster';
import { TestMount } from './helpers/test-mount';

/**
 * A writer in a process of its own: it writes 1.5 MiB to the file, says "written", and closes
 * it when told (a line on stdin), saying how that went. (Not this process: every program this
 * one starts would close an inherited copy of the descriptor at exec, and that close flushes.)
 */
const WRITER = `
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b'\\1' * (3 << 19))
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

  it("is reported by the writer's close, also after another process's read or idle close met it first", async () => {
    for (const cs of cluster.chunkservers) await kill(cs);
    const writer = spawn('python3', ['-c', WRITER, mount.at('f')], { stdio: ['pipe', 'pipe', 'inherit'] });
    let said = '';
    writer.stdout.setEncoding('utf8').on('data', (s: string) => (said += s));
    const exited = once(writer, 'exit');
    try {
      while (!said.includes('written')) await once(writer.stdout, 'data');
      // A handle opened for writing that writes nothing: its close flushes, and may report the
      // failure, but must not take it from the writer.
      await mount.sh(`python3 -c 'import os; os.close(os.open("f", os.O_RDWR))'`);
      // The reader's flush makes the writes visible to it: they fail, and so does the read.
      const read = await mount.sh('cat f > /dev/null');
      assert.notEqual(read.code, 0, 'the read failed with the writes');
      assert.match(read.stderr, /Input\/output error|No space left/);
    } finally {
      writer.stdin.end('close\n');
      await exited;
    }
    // The writer learns it too: close(2) must not acknowledge what never landed.
    assert.match(said, /close failed (Input\/output error|No space left on device)/);
  });
});
