import type { CommandModule } from 'yargs';
import { masterPath } from '../paths';
import { MasterArg, withMaster, withMasterOption } from './master-option';

const checkpointCommand: CommandModule<object, MasterArg> = {
  command: 'checkpoint',
  describe: 'write a checkpoint now',
  builder: (y) => withMasterOption(y),
  handler: (args) => withMaster(args, async (client) => {
    const r = await client.checkpoint();
    console.log(`txid ${r.txid}\nbytes ${r.bytes}\nduration ${r.durationMs.toFixed(1)} ms`);
  }),
};

const statusCommand: CommandModule<object, MasterArg & { json: boolean }> = {
  command: 'status',
  describe: 'show log position, metadata directories and alarms',
  builder: (y) => withMasterOption(y).option('json', { type: 'boolean', default: false }),
  handler: (args) => withMaster(args, async (client) => {
    const s = await client.status();
    if (args.json) return console.log(JSON.stringify(s));
    const lines = [
      `txid ${s.txid}`,
      `checkpoint txid ${s.checkpointTxid}`,
      `epoch ${s.epoch}`,
      `inodes ${s.inodes}`,
      ...s.metaDirs.map((d) => `meta dir ${d.path}: ${d.healthy ? 'healthy' : `FAILED (${d.error})`}`),
      ...(s.alarms.length ? s.alarms.map((a) => `ALARM ${a}`) : ['no alarms']),
    ];
    console.log(lines.join('\n'));
  }),
};

const reportCommand: CommandModule<object, MasterArg & { json: boolean }> = {
  command: 'report',
  describe: 'chunkservers (id, address, rack, alive, chunks, capacity, used, free) and chunk health',
  builder: (y) => withMasterOption(y).option('json', { type: 'boolean', default: false }),
  handler: (args) => withMaster(args, async (client) => {
    const r = await client.report();
    if (args.json) return console.log(JSON.stringify(r));
    const c = r.chunks!;
    console.log([
      ...r.chunkservers.map((cs) =>
        `${cs.alive ? 'alive' : 'DEAD '} ${cs.id} ${cs.address}${cs.rack ? ` rack=${cs.rack}` : ''}` +
        `${cs.state === 'normal' ? '' : ` ${cs.state.toUpperCase()}`} chunks=${cs.chunks} ` +
        `used=${cs.usedBytes}/${cs.capacityBytes} bytes, free=${cs.freeBytes} bytes, last heartbeat ${new Date(cs.lastHeartbeatMs).toISOString()}`),
      `${r.chunkservers.length} chunkservers, ${r.chunkservers.filter((cs) => cs.alive).length} alive`,
      `chunks: ${c.total} total, ${c.underReplicated} under-replicated, ${c.overReplicated} over-replicated, ` +
        `${c.corrupt} corrupt, ${c.missing} missing`,
    ].join('\n'));
  }),
};

const fsckCommand: CommandModule<object, MasterArg & { path: string; json: boolean }> = {
  command: 'fsck [path]',
  describe: 'health of every file at or below PATH (default /), like hdfs fsck; exit 1 if data is missing',
  builder: (y) => withMasterOption(y)
    .positional('path', { type: 'string', default: '/' })
    .option('json', { type: 'boolean', default: false }),
  handler: (args) => withMaster(args, async (client) => {
    const r = await client.fsck(masterPath(args.path));
    if (args.json) console.log(JSON.stringify(r));
    else {
      const line = (c: NonNullable<typeof r.chunks>) =>
        `${c.total} chunks: ${c.underReplicated} under-replicated, ${c.overReplicated} over-replicated, ${c.corrupt} corrupt, ${c.missing} missing`;
      for (const f of r.unhealthy) console.log(`${f.path} (${f.size} bytes, replication ${f.replication}): ${line(f.chunks!)}`);
      console.log(`${r.files} files, ${line(r.chunks!)}`);
      console.log(`The filesystem under '${args.path}' is ${r.healthy ? 'HEALTHY' : 'CORRUPT'}`);
    }
    if (!r.healthy) process.exitCode = 1;
  }),
};

const decommissionCommand: CommandModule<object, MasterArg & { chunkserver: string }> = {
  command: 'decommission <chunkserver>',
  describe: 'drain a chunkserver (id or HOST:PORT): its chunks are copied elsewhere, then `admin report` shows it decommissioned',
  builder: (y) => withMasterOption(y).positional('chunkserver', { type: 'string', demandOption: true }),
  handler: (args) => withMaster(args, async (client) => {
    const cs = await client.decommission(args.chunkserver);
    console.log(`chunkserver ${cs.id} at ${cs.address}: ${cs.state}` +
      (cs.state === 'decommissioning' ? ` (${cs.chunks} replicas to copy elsewhere; see chunkfs admin report)` : ''));
  }),
};

const logCommand: CommandModule<object, { 'meta-dir': string; from: number }> = {
  command: 'log',
  describe: 'print the operation log of a metadata directory from a txid on (JSON lines; reads the files, no master needed)',
  builder: (y) => y
    .option('meta-dir', { type: 'string', demandOption: true, requiresArg: true, describe: 'metadata directory' })
    .option('from', { type: 'number', default: 1, describe: 'first txid to print' })
    .check((a) => (Number.isSafeInteger(a.from) && a.from >= 1 ? true : '--from must be a positive whole number')),
  handler: async (args) => {
    const { printLog } = await import('./log-dump');
    printLog(args['meta-dir'], args.from);
  },
};

export const adminCommand: CommandModule = {
  command: 'admin <command>',
  describe: 'operate a master (checkpoint, status, report, fsck, decommission, log)',
  builder: (y) => y.command(checkpointCommand).command(statusCommand).command(reportCommand).command(fsckCommand)
    .command(decommissionCommand).command(logCommand).demandCommand(1),
  handler: () => undefined, // the subcommands do the work
};
