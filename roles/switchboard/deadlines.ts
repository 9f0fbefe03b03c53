/**
 * Timers for the switchboard's deadlines (queue timeout, job timeout, stop grace, supervisor
 * grace), keyed so that re-arming or clearing one is idempotent. Deadlines are absolute times
 * derived from database columns, so after a restart they are simply armed again.
 */

/** setTimeout's longest delay; longer deadlines re-arm in steps. */
const MAX_TIMER_MS = 2_147_483_647;

export class Deadlines {
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Runs `fire` at `at` (epoch ms), replacing any deadline with the same key. */
  set(key: string, at: number, fire: () => void): void {
    this.clear(key);
    const delay = Math.max(0, at - this.now());
    const id = setTimeout(() => {
      this.#timers.delete(key);
      if (delay > MAX_TIMER_MS) this.set(key, at, fire);
      else fire();
    }, Math.min(delay, MAX_TIMER_MS));
    this.#timers.set(key, id);
  }

  clear(key: string): void {
    const id = this.#timers.get(key);
    if (id !== undefined) {
      clearTimeout(id);
      this.#timers.delete(key);
    }
  }

  has(key: string): boolean {
    return this.#timers.has(key);
  }

  clearAll(): void {
    for (const id of this.#timers.values()) clearTimeout(id);
    this.#timers.clear();
  }
}
