/**
 * Keys remembered at most, the oldest forgotten first: several minutes of changes at a busy
 * master's pace, while a client sends a call again within its deadline (30 s for a mount).
 */
export const MAX_KEYS = 100_000;

/**
 * The retry keys (proto/master.proto, Call.retry_key) of the latest changes applied, live or
 * replayed from the log: a call sent again after its connection broke, whose change was made
 * (before a master crash too, if its record was durable), is recognised and not made twice
 * (master-handlers.ts answers it EALREADY).
 */
export class RetryKeys {
  private readonly keys = new Set<string>();
  /** The keys in the order they came, a ring of MAX_KEYS: forgetting the oldest costs O(1). */
  private readonly order: string[] = [];
  private next = 0;

  has(key: string | undefined): boolean {
    return key !== undefined && this.keys.has(key);
  }

  add(key: string): void {
    if (this.keys.has(key)) return;
    if (this.order.length < MAX_KEYS) this.order.push(key);
    else {
      this.keys.delete(this.order[this.next]);
      this.order[this.next] = key;
      this.next = (this.next + 1) % MAX_KEYS;
    }
    this.keys.add(key);
  }
}

/** The retry key in a logged change's JSON, if any (for records a checkpoint already covers). */
export function retryKeyOf(record: string): string | undefined {
  return /"retryKey":"([^"\\]*)"/.exec(record)?.[1];
}
