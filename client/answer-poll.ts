import { performance } from 'perf_hooks';

/**
 * Keeps the event loop polling its sockets, instead of sleeping in epoll, until `answered()`
 * or for at most `maxMs`: each turn is a non-blocking epoll, so an answer is read the moment it
 * lands. Why: on a virtual machine a process that sleeps on an idle CPU pays 50-130 µs to be
 * woken (the virtual CPU halts), and a namespace change waits for the master's log write
 * (0.3-0.5 ms), so its answer always meets a halted CPU. Polling spends that wait's CPU time.
 */
export class AnswerPoll {
  /** Event-loop turns spent waiting so far (for tests and diagnostics). */
  turns = 0;
  private polling = false;

  constructor(private readonly maxMs: number) {}

  /** Starts polling unless it already is (or maxMs is 0). */
  start(answered: () => boolean): void {
    if (this.polling || this.maxMs <= 0) return;
    this.polling = true;
    const until = performance.now() + this.maxMs;
    const turn = (): void => {
      if (answered() || performance.now() >= until) {
        this.polling = false;
        return;
      }
      this.turns++;
      setImmediate(turn);
    };
    setImmediate(turn);
  }
}
