import type { Argv } from 'yargs';
import { MasterClient } from '../master-client';

export interface MasterArg {
  master: string;
}

/** Adds `--master HOST:PORT` (default $CHUNKFS_MASTER, else 127.0.0.1:9000). */
export function withMasterOption<T>(yargs: Argv<T>): Argv<T & MasterArg> {
  return yargs.option('master', {
    type: 'string',
    describe: 'master address HOST:PORT',
    default: process.env.CHUNKFS_MASTER || '127.0.0.1:9000',
    defaultDescription: '$CHUNKFS_MASTER or 127.0.0.1:9000',
    requiresArg: true,
  });
}

/** Runs `use` with a client of the master, closing it afterwards so the process can exit. */
export async function withMaster<R>(args: MasterArg, use: (client: MasterClient) => Promise<R>): Promise<R> {
  const client = new MasterClient(args.master);
  try {
    return await use(client);
  } finally {
    client.close();
  }
}
