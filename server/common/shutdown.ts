import { logger } from './log';

const log = logger('shutdown');

/**
 * On the first SIGTERM or SIGINT, runs `stop` (the process's start-up steps in reverse) once,
 * then exits 0. Every server's composition root ends with this.
 */
export function exitOnSignals(stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: shutting down`);
    void stop().then(
      () => process.exit(0),
      (err: Error) => {
        log.error(`shut-down failed: ${err.message}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}
