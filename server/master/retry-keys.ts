import { FsError } from '../common/fs-error';

/** Keys remembered at most; the oldest go first. A client sends a call again within its deadline (30 s for a mount). */
const MAX_KEYS = 100_000;

/**
 * The retry keys (proto/master.proto, Call.retry_key) of the latest changes applied, live or
 * replayed from the log: a call sent again after its connection broke, whose change was made
 * (before a master crash too, if its record was durable), is recognised and not made twice.
 */
export class RetryKeys {
  private readonly keys = new Set<string>();

  has(key: string | undefined): boolean {
    return key !== undefined && this.keys.has(key);
  }

  /** Throws EALREADY when a change with `key` was applied. */
  check(key: string | undefined): void {
    if (this.has(key)) throw new FsError('EALREADY', `the change with retry key ${key} was made already`);
  }

  add(key: string): void {
    this.keys.add(key);
    if (this.keys.size > MAX_KEYS) this.keys.delete(this.keys.values().next().value!);
  }

  get size(): number {
    return this.keys.size;
  }
}
