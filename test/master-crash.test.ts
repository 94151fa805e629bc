import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MasterClient } from '../client/master-client';
import { FsError } from '../server/common/fs-error';
import { S_IFDIR, S_IFLNK, S_IFMT } from '../server/master/inode';
import { MasterProcess, startMaster } from './helpers/server-process';
import { prng } from './helpers/prng';

/**
 * Defence layer 1 with real processes: clients mutate concurrently, the master is killed with
 * SIGKILL at random moments and restarted on the same metadata directories. Every mutation a
 * client saw acknowledged must be there afterwards; the one in flight at the kill may or may
 * not be, but never half. Each client checks its subtree against its own model.
 */
const CLIENTS = 8;
const KILLS = 8;
/** Records between background checkpoints in the kill test. */
const CHECKPOINT_TXNS = 200;

describe('master crash recovery (SIGKILL at random moments)', function () {
  this.timeout(180_000);
  let root: string;
  let master: MasterProcess | null = null;

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'chunkfs-crash-'));
  });
  afterEach(async () => {
    if (master) await killHard(master);
    master = null;
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('keeps every acknowledged mutation across repeated kill -9, with background checkpoints', async () => {
    const dirs = [path.join(root, 'm1'), path.join(root, 'm2')];
    const args = ['--checkpoint-txns', String(CHECKPOINT_TXNS)];
    master = await startMaster(dirs, args);
    const conn = new Connection(master.address);
    const clients = Array.from({ length: CLIENTS }, (_, k) => new ModelClient(`/c${k}`, conn, 1000 + k));
    for (const c of clients) await c.init();
    const loops = clients.map((c) => c.run());

    // Kills go on until the log has passed a few checkpoint intervals: a slow disk logs fewer
    // mutations a round (336 in eight on one machine), and background checkpoints must have run.
    const logged = (): Promise<number> => conn.client.status().then((st) => st.txid, () => 0);
    for (let round = 0; round < KILLS || (round < 4 * KILLS && (await logged()) < 3 * CHECKPOINT_TXNS); round++) {
      await sleep(150 + Math.random() * 500);
      if (round % 3 === 1) void conn.client.checkpoint().catch(() => undefined); // kill mid-checkpoint too
      conn.down();
      await killHard(master);
      master = await startMaster(dirs, args);
      conn.up(master.address);
    }
    await sleep(300);
    for (const c of clients) c.stop();
    await Promise.all(loops);
    for (const c of clients) assert.ok(c.acknowledged > 20, `client ${c.base} made progress (${c.acknowledged})`);

    // One last crash with nothing in flight, then a full check of every subtree and of nlinks.
    await killHard(master);
    master = await startMaster(dirs, args);
    conn.up(master.address);
    for (const c of clients) await c.verify(null);
    await checkTreeConsistency(conn.client, '/');
    const { checkpointTxid, txid } = await conn.client.status();
    assert.ok(checkpointTxid > 0 && checkpointTxid <= txid, `background checkpoints ran (newest at ${checkpointTxid} of ${txid})`);
    conn.close();
  });

  it('refuses to start on a corrupt log, naming the file and offset, and changes nothing', async () => {
    const dir = path.join(root, 'm');
    master = await startMaster([dir]);
    const client = new MasterClient(master.address);
    for (let i = 0; i < 50; i++) await client.mkdir(`/d${i}`, 0o755);
    client.close();
    await killHard(master);
    master = null;
    const seg = fs.readdirSync(dir).filter((n) => n.startsWith('edits_')).sort()[0];
    const file = path.join(dir, seg);
    const buf = fs.readFileSync(file);
    buf[Math.floor(buf.length / 2)] ^= 0xff;
    fs.writeFileSync(file, buf);
    const failed = await startMaster([dir]).then(
      () => assert.fail('master started on a corrupt log'),
      (err: Error) => err,
    );
    assert.match(failed.message, new RegExp(`${seg} offset \\d+`));
    assert.deepEqual(fs.readFileSync(file), buf, 'the corrupt log is left as it was');
  });
});

// ------------------------------------------------------------------ the model-checking client

type Node = { kind: 'file'; mode: number; size: number } | { kind: 'dir'; mode: number } | { kind: 'symlink'; target: string };
/** path (relative to the client's base) -> node; hard links share the node object. */
type Model = Map<string, Node>;

type Op =
  | { op: 'create' | 'mkdir' | 'unlink' | 'rmdir'; p: string }
  | { op: 'symlink'; p: string; target: string }
  | { op: 'link' | 'rename'; p: string; q: string }
  | { op: 'setattr'; p: string; mode: number; size: number };

/** The master's current address, replaced on restart; clients wait while it is down. */
class Connection {
  client: MasterClient;
  private upWaiters: Array<() => void> = [];
  private isDown = false;

  constructor(address: string) {
    this.client = new MasterClient(address, { deadlineMs: 5000 });
  }
  down(): void {
    this.isDown = true;
  }
  up(address: string): void {
    this.client.close();
    this.client = new MasterClient(address, { deadlineMs: 5000 });
    this.isDown = false;
    this.upWaiters.splice(0).forEach((w) => w());
  }
  waitUp(): Promise<void> {
    return this.isDown ? new Promise((r) => this.upWaiters.push(r)) : Promise.resolve();
  }
  close(): void {
    this.client.close();
  }
}

class ModelClient {
  model: Model = new Map();
  acknowledged = 0;
  private stopped = false;
  private n = 0;
  private rand: () => number;

  constructor(
    readonly base: string,
    private readonly conn: Connection,
    seed: number,
  ) {
    this.rand = prng(seed);
  }

  async init(): Promise<void> {
    await this.conn.client.mkdir(this.base, 0o755);
  }
  stop(): void {
    this.stopped = true;
  }

  async run(): Promise<void> {
    while (!this.stopped) {
      const op = this.nextOp();
      try {
        await this.send(op);
        applyOp(this.model, op);
        this.acknowledged++;
      } catch (err) {
        if (isOutage(err)) {
          // The op in flight may or may not have happened, never half. The check itself may
          // meet the next kill (on a loaded machine it is slow): then it is simply run again.
          for (;;) {
            await this.conn.waitUp();
            try {
              await this.verify(op);
              break;
            } catch (again) {
              if (!isOutage(again)) throw again;
            }
          }
        } else {
          throw new Error(`${this.base}: ${JSON.stringify(op)} failed: ${String(err)}`);
        }
      }
    }
  }

  /** The subtree equals the model, or (with `uncertain`) the model with that op applied. */
  async verify(uncertain: Op | null): Promise<void> {
    const actual = await readTree(this.conn.client, this.base);
    const without = describeModel(this.model);
    if (equalDescriptions(actual, without)) return;
    if (uncertain) {
      const withOp = cloneModel(this.model);
      applyOp(withOp, uncertain);
      if (equalDescriptions(actual, describeModel(withOp))) {
        this.model = withOp;
        return;
      }
    }
    assert.deepEqual(actual, without, `${this.base} after restart (uncertain op: ${JSON.stringify(uncertain)})`);
  }

  private send(op: Op): Promise<unknown> {
    const c = this.conn.client;
    const abs = (p: string) => `${this.base}/${p}`;
    switch (op.op) {
      case 'create':
        return c.create(abs(op.p), 0o644, true);
      case 'mkdir':
        return c.mkdir(abs(op.p), 0o755);
      case 'unlink':
        return c.unlink(abs(op.p));
      case 'rmdir':
        return c.rmdir(abs(op.p));
      case 'symlink':
        return c.symlink(op.target, abs(op.p));
      case 'link':
        return c.link(abs(op.p), abs(op.q));
      case 'rename':
        return c.rename(abs(op.p), abs(op.q));
      case 'setattr':
        return c.setattr(abs(op.p), { mode: op.mode, size: op.size });
    }
  }

  /** A valid operation on the current model: top-level dirs hold only files and links. */
  private nextOp(): Op {
    const name = () => `n${this.n++}`;
    const paths = [...this.model.keys()];
    const files = paths.filter((p) => this.model.get(p)!.kind === 'file');
    const dirs = paths.filter((p) => this.model.get(p)!.kind === 'dir');
    const pick = <T>(xs: T[]) => xs[Math.floor(this.rand() * xs.length)];
    const place = () => (dirs.length && this.rand() < 0.5 ? `${pick(dirs)}/${name()}` : name());
    const r = this.rand();
    if (r < 0.25 || files.length === 0) return { op: 'create', p: place() };
    if (r < 0.33) return { op: 'mkdir', p: name() };
    if (r < 0.4) return { op: 'symlink', p: place(), target: `t${this.n}` };
    if (r < 0.5) return { op: 'link', p: pick(files), q: place() };
    if (r < 0.65) {
      const victim = this.rand() < 0.3 && files.length > 1 ? pick(files) : place();
      return { op: 'rename', p: pick(files), q: victim };
    }
    if (r < 0.8) return { op: 'setattr', p: pick(files), mode: Math.floor(this.rand() * 0o777), size: Math.floor(this.rand() * 1e6) };
    const empty = dirs.filter((d) => !paths.some((p) => p.startsWith(`${d}/`)));
    if (r < 0.87 && empty.length) return { op: 'rmdir', p: pick(empty) };
    const removable = paths.filter((p) => this.model.get(p)!.kind !== 'dir');
    return { op: 'unlink', p: pick(removable) };
  }
}

function applyOp(m: Model, op: Op): void {
  switch (op.op) {
    case 'create':
      m.set(op.p, { kind: 'file', mode: 0o644, size: 0 });
      break;
    case 'mkdir':
      m.set(op.p, { kind: 'dir', mode: 0o755 });
      break;
    case 'symlink':
      m.set(op.p, { kind: 'symlink', target: op.target });
      break;
    case 'link':
      m.set(op.q, m.get(op.p)!);
      break;
    case 'rename': {
      const node = m.get(op.p)!;
      if (m.get(op.q) === node) break; // same file: rename(2) does nothing
      m.delete(op.p);
      m.set(op.q, node);
      break;
    }
    case 'unlink':
    case 'rmdir':
      m.delete(op.p);
      break;
    case 'setattr': {
      const node = m.get(op.p)!;
      if (node.kind === 'file') {
        node.mode = op.mode;
        node.size = op.size;
      }
      break;
    }
  }
}

function cloneModel(m: Model): Model {
  const copies = new Map<Node, Node>();
  const out: Model = new Map();
  for (const [p, node] of m) {
    if (!copies.has(node)) copies.set(node, { ...node });
    out.set(p, copies.get(node)!);
  }
  return out;
}

/** Sorted "path kind details" lines plus the hard-link groups (which paths share a file). */
interface Description {
  entries: string[];
  links: string[];
}

function describeModel(m: Model): Description {
  const groups = new Map<Node, string[]>();
  const entries = [...m].map(([p, n]) => {
    if (n.kind === 'file') groups.set(n, [...(groups.get(n) ?? []), p]);
    return n.kind === 'file' ? `${p} file ${n.mode.toString(8)} ${n.size} nlink=${[...m.values()].filter((x) => x === n).length}`
      : n.kind === 'dir' ? `${p} dir ${n.mode.toString(8)}` : `${p} symlink ${n.target}`;
  });
  return { entries: entries.sort(), links: [...groups.values()].map((g) => g.sort().join(' ')).sort() };
}

async function readTree(c: MasterClient, base: string): Promise<Description> {
  const entries: string[] = [];
  const groups = new Map<number, string[]>();
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const e of await c.readdirAll(dir)) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      const type = e.attr.mode & S_IFMT;
      if (type === S_IFDIR) {
        entries.push(`${p} dir ${(e.attr.mode & 0o7777).toString(8)}`);
        await walk(`${dir}/${e.name}`, p);
      } else if (type === S_IFLNK) {
        entries.push(`${p} symlink ${await c.readlink(`${dir}/${e.name}`)}`);
      } else {
        entries.push(`${p} file ${(e.attr.mode & 0o7777).toString(8)} ${e.attr.size} nlink=${e.attr.nlink}`);
        groups.set(e.attr.ino, [...(groups.get(e.attr.ino) ?? []), p]);
      }
    }
  };
  await walk(base, '');
  return { entries: entries.sort(), links: [...groups.values()].map((g) => g.sort().join(' ')).sort() };
}

function equalDescriptions(a: Description, b: Description): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Directory nlink = 2 + subdirectories, everywhere. */
async function checkTreeConsistency(c: MasterClient, dir: string): Promise<void> {
  const entries = await c.readdirAll(dir);
  const subdirs = entries.filter((e) => (e.attr.mode & S_IFMT) === S_IFDIR);
  assert.equal((await c.getattr(dir)).nlink, 2 + subdirs.length, `nlink of ${dir}`);
  for (const d of subdirs) await checkTreeConsistency(c, dir === '/' ? `/${d.name}` : `${dir}/${d.name}`);
}

async function killHard(m: MasterProcess): Promise<void> {
  m.kill('SIGKILL');
  await m.stopped;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A call cut off by a master crash: its outcome is unknown (not a wrong answer). */
function isOutage(err: unknown): boolean {
  return err instanceof FsError && (err.code === 'EIO' || err.code === 'ETIMEDOUT');
}
