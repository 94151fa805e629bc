/**
 * A server cannot start for a reason the operator must act on (a corrupt log, a directory in
 * use by another process, ...). The message says what and where; no stack trace is shown.
 */
export class StartupError extends Error {
  override name = 'StartupError';
}
