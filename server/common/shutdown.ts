import { logger } from './log';

const log = logger('shutdown');

/**
 * Set to 1 by `chunkfs up` for its servers: each stops when up ends, however it ends (a kill -9
 * too), since that closes the pipe up holds on the server's stdin.
 */
export const STOP_WITH_PARENT_ENV = 'CHUNKFS_STOP_WITH_PARENT';

/**
 * On the first SIGTERM or SIGINT (or, under `chunkfs up`, the end of its stdin), runs `stop`
 * (the process's start-up steps in reverse) once, then exits 0. Every server's composition
 * root ends with this.
 */
export function exitOnSignals(stop: () => Promise<void>): void {
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
    process.stdin.once('end', () => shutDown('chunkfs up ended'));
    process.stdin.once('error', () => shutDown('chunkfs up ended'));
    process.stdin.resume();
    // Watching it keeps no process alive (a mount unmounted from outside still exits).
    (process.stdin as { unref?: () => void }).unref?.();
  }
}
