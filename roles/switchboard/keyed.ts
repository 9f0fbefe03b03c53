/**
 * Two small in-process coordination tools keyed by a string (a job id): a chain that runs the
 * work for one key strictly one after another, and waiters that a later event wakes.
 */

/** Runs work per key in order; work for different keys runs concurrently. */
export class KeyedChain {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const run = (this.#tails.get(key) ?? Promise.resolve()).then(work, work);
    const tail = run.catch(() => {});
    this.#tails.set(key, tail);
    tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return run;
  }
}

/** Waiters per key, resolved by `wake(key, value)` or with undefined after a timeout. */
export class KeyedWaiters<T> {
  readonly #waiters = new Map<string, Set<(value: T | undefined) => void>>();

  wait(key: string, timeoutMs: number): Promise<T | undefined> {
    return new Promise((resolve) => {
      const waiters = this.#waiters.get(key) ?? new Set();
      this.#waiters.set(key, waiters);
      const done = (value: T | undefined) => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0) this.#waiters.delete(key);
        resolve(value);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      waiters.add(done);
    });
  }

  wake(key: string, value: T): void {
    for (const done of [...(this.#waiters.get(key) ?? [])]) done(value);
  }
}
