/**
 * Minimal structured logging to stderr (stdout is reserved for machine-readable lines such as
 * `listening HOST:PORT`). Level from CHUNKFS_LOG: error | warn | info (default) | debug.
 */
const LEVELS = { error: 0, warn: 1, info: 2, debug: 3 } as const;
type Level = keyof typeof LEVELS;

const configured: Level = (process.env.CHUNKFS_LOG as Level) in LEVELS ? (process.env.CHUNKFS_LOG as Level) : 'info';

function emit(level: Level, component: string, msg: string): void {
  if (LEVELS[level] > LEVELS[configured]) return;
  process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase()} [${component}] ${msg}\n`);
}

export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  readonly debugEnabled: boolean;
}

export function logger(component: string): Logger {
  return {
    error: (m) => emit('error', component, m),
    warn: (m) => emit('warn', component, m),
    info: (m) => emit('info', component, m),
    debug: (m) => emit('debug', component, m),
    debugEnabled: LEVELS.debug <= LEVELS[configured],
  };
}
