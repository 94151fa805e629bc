interface Queue {
  /** Settles when every task queued so far on the key has settled. */
  tail: Promise<void>;
  /** When the last task queued is shared: the point its group of shared tasks starts from. */
  sharedStart: Promise<void> | null;
}

const ignore = (): void => undefined;

/**
 * Runs tasks one at a time per key, in arrival order; tasks of different keys run in parallel.
 * Shared tasks (reads) queued one after another run together, still ordered with the exclusive
 * tasks around them: a shared task arriving after an exclusive one waits for it, and an
 * exclusive task waits for every shared task before it. Only keys with queued work take memory.
 */
export class KeyedMutex<K> {
  private readonly queues = new Map<K, Queue>();

  run<T>(key: K, task: () => Promise<T>): Promise<T> {
    return this.enqueue(key, task, false);
  }

  runShared<T>(key: K, task: () => Promise<T>): Promise<T> {
    return this.enqueue(key, task, true);
  }

  /** Resolves once every task queued so far (and any queued meanwhile) has finished. */
  async idle(): Promise<void> {
    while (this.queues.size > 0) await Promise.all([...this.queues.values()].map((q) => q.tail));
  }

  private enqueue<T>(key: K, task: () => Promise<T>, shared: boolean): Promise<T> {
    const queue = this.queues.get(key);
    const before = queue?.tail ?? Promise.resolve();
    // A shared task joins the group of shared tasks queued last, if the last task is one.
    const start = shared && queue?.sharedStart ? queue.sharedStart : before;
    const result = start.then(task);
    const settled = result.then(ignore, ignore);
    const next: Queue = {
      tail: start === before ? settled : Promise.all([before, settled]).then(ignore),
      sharedStart: shared ? start : null,
    };
    this.queues.set(key, next);
    void next.tail.then(() => {
      if (this.queues.get(key) === next) this.queues.delete(key);
    });
    return result;
  }
}
