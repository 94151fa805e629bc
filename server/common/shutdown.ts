import { logger } from './log';

const log = logger('shutdown');

/**
 * Set to 1 by `chunkfs up` for its servers: each stops when up ends, however it ends (a kill -9
 * too), since that closes the pipe up holds on the server's stdin.
 */
export const STOP_WITH_PARENT_ENV = 'CHUNKFS_STOP_WITH_PARENT';

/**
 * How long a master or chunkserver goes on after `chunkfs up` ended without stopping it (ms):
 * the mount, which learns of it at the same moment, flushes its open files to them first.
 */
export const AFTER_PARENT_MS = 2000;

/**
 * On the first SIGTERM or SIGINT (or, under `chunkfs up`, the end of its stdin, then after
 * `afterParentMs`), runs `stop` (the process's start-up steps in reverse) once, then exits 0.
 * Every server's composition root ends with this.
 */
export function exitOnSignals(stop: () => Promise<void>, afterParentMs = 0): void {
  let stopping = false;
  const shutDown = (why: string): void => {
    if (stopping) return;
    stopping = true;
    log.info(`${why}: shutting down`);
    void stop().then(
      () => process.exit(0),
      (err: Error) => {
        log.error(`shut-down failed: ${err.message}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', shutDown);
  process.once('SIGINT', shutDown);
  if (process.env[STOP_WITH_PARENT_ENV] === '1') {
    const parentEnded = (): void => void setTimeout(() => shutDown('chunkfs up ended'), afterParentMs);
    process.stdin.once('end', parentEnded);
    process.stdin.once('error', parentEnded);
    process.stdin.resume();
    // Watching it keeps no process alive (a mount unmounted from outside still exits).
    (process.stdin as { unref?: () => void }).unref?.();
  }
}
