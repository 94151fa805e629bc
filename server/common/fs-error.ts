/**
 * The one error type below the edges (STYLE habit 2). Everything inside servers and the client
 * library throws FsError with an errno *name*; exactly three converters turn it into something
 * else: server FsError -> gRPC status (server/common/grpc-status.ts), gRPC status -> FsError
 * (same file), and FsError -> negative errno at the FUSE boundary (mount/).
 */

/** Linux errno numbers for the names ChunkFS uses. */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EFBIG: 27,
  ENOSPC: 28,
  EROFS: 30,
  EMLINK: 31,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  EOPNOTSUPP: 95,
  ETIMEDOUT: 110,
  EALREADY: 114,
  ESTALE: 116,
} as const;

export type ErrnoName = keyof typeof ERRNO;

export function isErrnoName(name: string): name is ErrnoName {
  return Object.prototype.hasOwnProperty.call(ERRNO, name);
}

export class FsError extends Error {
  readonly code: ErrnoName;

  constructor(code: ErrnoName, message: string) {
    // No stack trace: an FsError is an answer (a lookup's ENOENT, say), thrown on hot paths, and
    // its message says what failed. Capturing the stack cost ~20 us per error, on both ends.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`${code}: ${message}`);
    Error.stackTraceLimit = limit;
    this.code = code;
    this.name = 'FsError';
  }

  get errno(): number {
    return ERRNO[this.code];
  }
}

/** Turns anything thrown into an FsError; unknown errors become EIO (callers log them). */
export function toFsError(err: unknown): FsError {
  if (err instanceof FsError) return err;
  const e = err as NodeJS.ErrnoException | undefined;
  if (e && typeof e.code === 'string' && isErrnoName(e.code)) return new FsError(e.code, e.message);
  return new FsError('EIO', e instanceof Error ? e.message : String(err));
}
